"""The authorization server's HTTP endpoints (Starlette): metadata, clients, login, consent.

Order of trust on /authorize: the client and its redirect URI are checked before anything is
sent to that URI; until both are known good, errors are a page here, never a redirect (no open
redirect). After that, errors go back to the client with `state` and `iss` (RFC 9207).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from tenantgate.authz import pages
from tenantgate.authz.cimd import Client, ClientDocumentError, DocumentFetcher, is_document_url
from tenantgate.authz.devidp import DevIdp
from tenantgate.authz.grants import TOKEN_EXCHANGE, Grants
from tenantgate.authz.issuance import Issuer
from tenantgate.authz.oidc import IdTokenError, OidcClient
from tenantgate.authz.ratelimit import Buckets
from tenantgate.authz.redirects import CHALLENGE, matches, registrable, s256
from tenantgate.authz.settings import AuthzSettings
from tenantgate.authz.signed import Signer
from tenantgate.authz.store import Store
from tenantgate.authz.web import SecurityHeaders, clear_cookie, csp, set_cookie
from tenantgate.mediator.tokens import TokenSigner

logger = logging.getLogger("tenantgate.authz")

SCOPE = re.compile(r"[a-z][a-z0-9_.:-]{0,63}\Z")
AUTHREQ, LOGIN, OIDC = "tg_authreq", "tg_login", "tg_oidc"
NEXT_PAGES = ("/consent", "/approvals")


def _html(body: str, status: int = 200, form_targets: str = "") -> HTMLResponse:
    resp = HTMLResponse(body, status_code=status)
    if form_targets:
        resp.headers["content-security-policy"] = csp(form_targets)
    return resp


def _origin(uri: str) -> str:
    p = urlsplit(uri)
    return f"{p.scheme}://{p.netloc}"


def _with_query(uri: str, params: dict[str, str]) -> str:
    sep = "&" if urlsplit(uri).query else "?"
    return f"{uri}{sep}{urlencode(params)}"


class AuthzServer:
    def __init__(
        self,
        settings: AuthzSettings,
        signer: TokenSigner,
        *,
        dev_idp: DevIdp | None = None,
        cookie_key: bytes | None = None,
    ) -> None:
        self.settings = settings
        self.issuer = settings.issuer
        self.signer = signer
        key = settings.cookie_key
        self.cookies = Signer(cookie_key or (key.get_secret_value().encode() if key else None))
        self.dev_idp = dev_idp
        self.store = Store(settings.database_url.get_secret_value())
        self.http = httpx.AsyncClient(timeout=10, follow_redirects=False, trust_env=False)
        secret = settings.idp_client_secret
        self.oidc = OidcClient(
            settings.idp_issuer,
            settings.idp_client_id,
            secret.get_secret_value() if secret else None,
            self.http,
        )
        self.fetcher = DocumentFetcher(
            timeout=settings.cimd_timeout_seconds,
            max_bytes=settings.cimd_max_bytes,
            cache_seconds=settings.cimd_cache_seconds,
            allow_loopback=settings.cimd_allow_loopback,
            ca_file=settings.cimd_ca_file,
        )
        self.tokens = Issuer(self.store, signer, settings.access_token_seconds)
        self.grants = Grants(self)
        self.callback_url = f"{self.issuer}/callback"
        self.registrations = Buckets(settings.register_burst, settings.register_per_minute)

    # -- wiring ------------------------------------------------------------------------------

    def app(self) -> SecurityHeaders:
        routes: list[Route | Mount] = [
            Route("/.well-known/oauth-authorization-server", self.metadata),
            Route("/jwks.json", self.jwks),
            Route("/register", self.register, methods=["POST"]),
            Route("/authorize", self.authorize),
            Route("/login", self.login),
            Route("/callback", self.callback),
            Route("/consent", self.consent, methods=["GET", "POST"]),
            Route("/token", self.grants.token, methods=["POST"]),
            Route("/revoke", self.grants.revoke, methods=["POST"]),
            Route("/approvals", self.approvals),
            Route("/approvals/{approval_id}", self.decide, methods=["POST"]),
            Route("/", self.home),
        ]
        if self.dev_idp is not None:
            routes.append(Mount("/dev-idp", app=self.dev_idp.app()))

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            await self.store.open()
            try:
                yield
            finally:
                await self.store.close()
                await self.http.aclose()

        return SecurityHeaders(Starlette(routes=routes, lifespan=lifespan))

    # -- discovery ---------------------------------------------------------------------------

    async def metadata(self, request: Request) -> Response:
        i = self.issuer
        grants = ["authorization_code", "refresh_token"]
        if self.settings.exchange_audiences:
            grants.append(TOKEN_EXCHANGE)
        return JSONResponse(
            {
                "issuer": i,
                "authorization_endpoint": f"{i}/authorize",
                "token_endpoint": f"{i}/token",
                "registration_endpoint": f"{i}/register",
                "revocation_endpoint": f"{i}/revoke",
                "jwks_uri": f"{i}/jwks.json",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": grants,
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "revocation_endpoint_auth_methods_supported": ["none"],
                "authorization_response_iss_parameter_supported": True,
                "client_id_metadata_document_supported": True,
                "service_documentation": "https://github.com/tenantgate/tenantgate#readme",
            },
            headers={"cache-control": "public, max-age=300"},
        )

    async def jwks(self, request: Request) -> Response:
        import jwt

        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.signer.public_key()))
        jwk.update(use="sig", alg=self.signer.algorithm)
        if self.signer.kid:
            jwk["kid"] = self.signer.kid
        return JSONResponse({"keys": [jwk]})

    async def home(self, request: Request) -> Response:
        body = (
            '<div class=card><p>This is the tenantgate authorization server.</p>'
            '<p><a href="approvals">Pending approvals</a></p></div>'
        )
        return _html(pages.layout("tenantgate", body))

    # -- clients -----------------------------------------------------------------------------

    async def resolve_client(self, client_id: str) -> Client | None:
        if is_document_url(client_id):
            try:
                return await self.fetcher.get(client_id)
            except (ClientDocumentError, TimeoutError) as exc:
                logger.info("client id document refused: %s", exc)
                return None
        if not client_id or len(client_id) > 200:
            return None
        return await self.store.client(client_id)

    async def register(self, request: Request) -> Response:
        """RFC 7591 for public clients: redirect URIs checked, PKCE enforced later."""
        caller = request.client.host if request.client else "unknown"
        if not self.registrations.take(caller):
            return JSONResponse(
                {"error": "too_many_requests",
                 "error_description": "too many registrations from this address; retry later"},
                status_code=429, headers={"retry-after": "60"},
            )
        body = await request.body()
        if len(body) > 16 * 1024:
            return _reg_error("invalid_client_metadata", "registration request too large")
        try:
            doc = json.loads(body)
        except ValueError:
            return _reg_error("invalid_client_metadata", "the body must be JSON")
        if not isinstance(doc, dict):
            return _reg_error("invalid_client_metadata", "the body must be a JSON object")
        uris = doc.get("redirect_uris")
        if (
            not isinstance(uris, list)
            or not 1 <= len(uris) <= 10
            or not all(isinstance(u, str) and registrable(u) for u in uris)
        ):
            return _reg_error(
                "invalid_redirect_uri",
                "redirect_uris: 1 to 10 URLs, each https or http on a loopback address",
            )
        grants = doc.get("grant_types") or ["authorization_code", "refresh_token"]
        if not isinstance(grants, list) or not set(grants) <= {"authorization_code",
                                                               "refresh_token"}:
            return _reg_error("invalid_client_metadata",
                              "grant_types: authorization_code and refresh_token only")
        if doc.get("response_types", ["code"]) != ["code"]:
            return _reg_error("invalid_client_metadata", "response_types: code only")
        name = doc.get("client_name")
        name = name[:200] if isinstance(name, str) else ""
        client = Client(f"tgc_{secrets.token_urlsafe(24)}", name, list(uris), "dcr")
        await self.store.register_client(client, {"grant_types": grants})
        return JSONResponse(
            {
                "client_id": client.client_id,
                "client_id_issued_at": int(time.time()),
                "client_name": name,
                "redirect_uris": client.redirect_uris,
                "grant_types": grants,
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            },
            status_code=201,
        )

    # -- authorization -----------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        client_id, redirect_uri = q.get("client_id", ""), q.get("redirect_uri", "")
        client = await self.resolve_client(client_id)
        if client is None:
            return _html(pages.error_page(
                "Unknown client.", "The application that sent you here is not registered, or "
                "its client id document could not be used."), 400)
        if not redirect_uri and len(client.redirect_uris) == 1:
            redirect_uri = client.redirect_uris[0]
        if not matches(redirect_uri, client.redirect_uris):
            return _html(pages.error_page(
                "This redirect address is not registered for the application.",
                "Nothing was sent anywhere. Ask the application's maker to fix its settings."), 400)
        state = q.get("state", "")

        def back(error: str, description: str) -> Response:
            params = {"error": error, "error_description": description, "iss": self.issuer}
            if state:
                params["state"] = state
            return RedirectResponse(_with_query(redirect_uri, params), status_code=303)

        if q.get("response_type") != "code":
            return back("unsupported_response_type", "response_type must be code")
        if q.get("code_challenge_method") != "S256" or not CHALLENGE.match(
            q.get("code_challenge", "")
        ):
            return back("invalid_request", "PKCE with code_challenge_method S256 is required")
        resource = q.get("resource") or self.settings.resource
        if not self.is_our_resource(resource):
            return back("invalid_target", "this server issues tokens for its mediator only")
        scopes = q.get("scope", "").split()
        if len(scopes) > 50 or not all(SCOPE.match(s) for s in scopes):
            return back("invalid_scope", "scopes are lowercase words such as read:tickets")
        if len(state) > 1000:
            return back("invalid_request", "state is too long")
        req = {
            "client_id": client.client_id,
            "client_name": client.client_name,
            "redirect_uri": redirect_uri,
            "challenge": q["code_challenge"],
            "state": state,
            "scopes": scopes,
            "resource": self.settings.resource,
        }
        secure = self.settings.secure_cookies
        login = self.cookies.loads(LOGIN, request.cookies.get(LOGIN))
        target = "consent" if login else "login?next=/consent"
        resp = RedirectResponse(f"{self.issuer}/{target}", status_code=303)
        set_cookie(resp, AUTHREQ, self.cookies.dumps(AUTHREQ, req, 900), 900, secure)
        return resp

    def is_our_resource(self, resource: str) -> bool:
        return resource.rstrip("/") == self.settings.resource.rstrip("/")

    # -- login at the identity provider --------------------------------------------------------

    async def login(self, request: Request) -> Response:
        nxt = request.query_params.get("next", "/approvals")
        if nxt not in NEXT_PAGES:
            nxt = "/approvals"
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)  # 64 characters: RFC 7636 wants 43 to 128
        try:
            url = await self.oidc.authorization_url(
                redirect_uri=self.callback_url, state=state, nonce=nonce, challenge=s256(verifier)
            )
        except (httpx.HTTPError, IdTokenError, KeyError, ValueError):
            logger.exception("identity provider unreachable")
            return _html(pages.error_page("The identity provider cannot be reached.",
                                          "Try again in a minute."), 503)
        resp = RedirectResponse(url, status_code=303)
        value = {"state": state, "nonce": nonce, "verifier": verifier, "next": nxt}
        set_cookie(resp, OIDC, self.cookies.dumps(OIDC, value, 600), 600,
                   self.settings.secure_cookies)
        return resp

    async def callback(self, request: Request) -> Response:
        pending = self.cookies.loads(OIDC, request.cookies.get(OIDC))
        q = request.query_params
        if pending is None or not secrets.compare_digest(q.get("state", ""), pending["state"]):
            return _html(pages.error_page("This login expired or did not start here.",
                                          "Start again from your application."), 400)
        if "code" not in q:
            return _html(pages.error_page("The identity provider did not log you in."), 400)
        try:
            token = await self.oidc.exchange(
                code=q["code"], verifier=pending["verifier"], redirect_uri=self.callback_url
            )
            identity = await self.oidc.verify(token, nonce=pending["nonce"])
        except (IdTokenError, httpx.HTTPError) as exc:
            logger.info("login refused: %s", exc)
            return _html(pages.error_page("The login was refused.", str(exc)
                                          if isinstance(exc, IdTokenError) else ""), 400)
        ops = await self.store.operators_by_email(identity.email)
        if len(ops) != 1:
            return _html(pages.error_page(
                "No active operator account for this identity.",
                "Ask your tenantgate admin to add or re-enable you (one org per email)."), 403)
        op = ops[0]
        login = {
            "org_id": op.org_id,
            "operator_id": op.operator_id,
            "org": op.org_name,
            "email": identity.email,
            "sid": secrets.token_urlsafe(16),
        }
        secure = self.settings.secure_cookies
        resp = RedirectResponse(f"{self.issuer}{pending['next']}", status_code=303)
        seconds = self.settings.login_seconds
        set_cookie(resp, LOGIN, self.cookies.dumps(LOGIN, login, seconds), seconds, secure)
        clear_cookie(resp, OIDC, secure)
        return resp

    def logged_in(self, request: Request) -> dict[str, Any] | None:
        return self.cookies.loads(LOGIN, request.cookies.get(LOGIN))

    def csrf(self, login: dict[str, Any], form: str) -> str:
        return self.cookies.mac("csrf", login["sid"], form)

    # -- consent -----------------------------------------------------------------------------

    async def consent(self, request: Request) -> Response:
        login = self.logged_in(request)
        req = self.cookies.loads(AUTHREQ, request.cookies.get(AUTHREQ))
        if req is None:
            return _html(pages.error_page("No authorization request is waiting.",
                                          "Start again from your application."), 400)
        if login is None:
            return RedirectResponse(f"{self.issuer}/login?next=/consent", status_code=303)
        choices = await self.store.choices(login["org_id"], login["operator_id"])
        if request.method == "GET":
            offered = sorted(_offered({s for c in choices for s in c.scopes}, req["scopes"]))
            body = pages.consent_page(
                client_name=req["client_name"],
                client_id=req["client_id"],
                operator=login["email"],
                org=login["org"],
                choices=[(c.customer_id, f"{c.customer_name} ({c.connector_name})")
                         for c in choices],
                scopes=offered,
                form={"csrf": self.csrf(login, "consent")},
            )
            return _html(body, form_targets=_origin(req["redirect_uri"]))
        form = await request.form()
        if not secrets.compare_digest(str(form.get("csrf", "")), self.csrf(login, "consent")):
            return _html(pages.error_page("This form expired or did not come from this site.",
                                          "Start again from your application."), 403)
        secure = self.settings.secure_cookies

        def back(params: dict[str, str]) -> Response:
            params["iss"] = self.issuer
            if req["state"]:
                params["state"] = req["state"]
            resp = RedirectResponse(_with_query(req["redirect_uri"], params), status_code=303)
            clear_cookie(resp, AUTHREQ, secure)
            return resp

        if form.get("decision") != "allow":
            return back({"error": "access_denied", "error_description": "the operator declined"})
        chosen = next((c for c in choices if c.customer_id == form.get("customer")), None)
        if chosen is None:
            return _html(pages.error_page("Customer not found.",
                                          "Pick one of the customers listed."), 404)
        allowed = _offered(set(chosen.scopes), req["scopes"])
        scopes = sorted({str(s) for s in form.getlist("scope")} & allowed)
        if not scopes:
            return _html(pages.error_page("Pick at least one scope."), 400)
        code = await self.grants.open_and_code(login, chosen, scopes, req)
        if code is None:
            return _html(pages.error_page("Customer not found or no longer active.",
                                          "Ask your tenantgate admin."), 404)
        return back({"code": code})

    # -- approvals ---------------------------------------------------------------------------

    async def approvals(self, request: Request, notice: str = "") -> Response:
        login = self.logged_in(request)
        if login is None:
            return RedirectResponse(f"{self.issuer}/login?next=/approvals", status_code=303)
        rows = await self.store.pending_approvals(login["org_id"], login["operator_id"])
        body = pages.approvals_page(operator=login["email"], org=login["org"], rows=rows,
                                    csrf=self.csrf(login, "approvals"), notice=notice)
        return _html(body)

    async def decide(self, request: Request) -> Response:
        login = self.logged_in(request)
        if login is None:
            return RedirectResponse(f"{self.issuer}/login?next=/approvals", status_code=303)
        form = await request.form()
        if not secrets.compare_digest(str(form.get("csrf", "")), self.csrf(login, "approvals")):
            return _html(pages.error_page("This form expired or did not come from this site."),
                         403)
        approval_id = request.path_params["approval_id"]
        approve = form.get("decision") == "approve"
        if not re.fullmatch(r"[0-9a-fA-F-]{36}", approval_id):
            return _html(pages.error_page("Approval not found."), 404)
        ok = await self.store.decide(login["org_id"], approval_id, login["operator_id"], approve)
        notice = (("Approved." if approve else "Denied.") if ok
                  else "Not found: already decided, expired, or your own request.")
        resp = await self.approvals(request, notice)
        resp.status_code = 200 if ok else 404
        return resp


def _offered(available: set[str], requested: list[str]) -> set[str]:
    """The requested scopes this connector knows; all of its scopes when the host asked for none
    of them (hosts often ask for `openid email profile`). The operator narrows on the page."""
    known = available & set(requested)
    return known or available


def _reg_error(code: str, description: str) -> Response:
    return JSONResponse({"error": code, "error_description": description}, status_code=400)
