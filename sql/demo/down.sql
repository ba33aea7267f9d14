-- down/70_demo.sql: remove the demo schema and its data.
drop schema if exists demo cascade;
