"""The API's OpenAPI schema as a contract: how to authenticate, the error every refusal answers,
the statuses each operation really gives, and the current code (`otp`) the sensitive acts take.

drf-spectacular describes what each view declares; what every view shares (the error shape of
portal.api.errors, the permission and second-factor checks, the parsers' refusals) is added here
once, from the view's own permission classes, so the schema cannot forget an operation.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.permissions import SAFE_METHODS

ERROR = ResolvedComponent(
    name="Error",
    type=ResolvedComponent.SCHEMA,
    object="Error",
    schema={
        "type": "object",
        "description": "Every refusal: what went wrong in words, a stable code, and for invalid input "
        "the message of each field under `errors`.",
        "properties": {
            "detail": {"type": "string", "description": "What went wrong, for a person."},
            "code": {"type": "string", "description": "A stable code: invalid, permission_denied, ..."},
            "errors": {
                "description": "For invalid input: each field's messages (400 only).",
                "oneOf": [
                    {"type": "object", "additionalProperties": True},
                    {"type": "array", "items": {}},
                    {"type": "string"},
                ],
            },
        },
        "required": ["detail", "code"],
        "additionalProperties": True,
    },
)

OTP = {
    "type": "object",
    "properties": {
        "otp": {
            "type": "string",
            "maxLength": 16,
            "description": "A current code from your authenticator app (or a backup code); a token "
            "alone never suffices for this act.",
        }
    },
    "required": ["otp"],
}

# What each status means when the view says nothing more about it.
ERRORS = {
    "400": "The request is malformed or its input is invalid: `errors` says which field and why.",
    "401": "No credentials, or a token that is invalid, expired or revoked (WWW-Authenticate: Token).",
    "403": "The caller lacks the right (named in `detail`), or the act's current code is missing or wrong.",
    "404": "No such object, or not one the caller may see.",
    "409": "The object's state refuses the act (such as a change that is not approved yet).",
    "413": "The request body is larger than the API takes.",
    "415": "The body is not JSON.",
    "429": "Too many wrong codes: the account is locked for a while (Retry-After, in seconds).",
}


class AutoSchema(SpectacularAutoSchema):
    def _permissions(self) -> list:
        try:
            return list(self.view.get_permissions())
        except Exception:  # a view that needs more of a request than the schema's mock has
            return []

    def _needs_code(self) -> bool:
        from portal.api.permissions import FreshOTP

        return self.method not in SAFE_METHODS and any(isinstance(p, FreshOTP) for p in self._permissions())

    def map_parsers(self) -> list[str]:
        # JSON is the contract; the form parsers serve the browsable API.
        return ["application/json"]

    def _authenticated(self) -> bool:
        return bool(getattr(self.view, "authentication_classes", None))

    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        if not self._needs_code():
            return body
        if body is None and self.method == "DELETE":
            # drf-spectacular leaves a DELETE's body out; this one carries the code (and what
            # else the view declares, such as the capacity to remove).
            declared = self.get_request_serializer()
            schema = self._get_request_for_media_type(declared, direction)[0] if declared else None
            body = {"content": {"application/json": {"schema": schema or OTP}}}
        if body is None:
            return {"content": {"application/json": {"schema": OTP}}, "required": True}
        for media in body["content"].values():
            schema = media.get("schema", {})
            if "otp" not in self._properties_of(schema):
                media["schema"] = {"allOf": [schema, OTP]}
        body["required"] = True
        return body

    def _properties_of(self, schema: dict) -> dict:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            for component in self.registry._components.values():
                if component.name == name and component.schema:
                    return component.schema.get("properties", {})
            return {}
        return schema.get("properties", {})

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if not self._authenticated():
            return responses  # the webhooks: each says what it answers
        self.registry.register_on_missing(ERROR)
        for code, response in responses.items():
            if code >= "400" and "content" not in response and "$ref" not in response:
                # A refusal the view names without a body: the API's error, as every refusal.
                response["content"] = {"application/json": {"schema": ERROR.ref}}
        codes = ["400", "401", "403"]
        if "{" in self.path:
            codes.append("404")
        if self.method not in SAFE_METHODS:
            codes += ["409", "413", "415"]
        if self._needs_code():
            codes.append("429")
        for code in codes:
            if code not in responses:
                component = _error_response(code)
                self.registry.register_on_missing(component)
                responses[code] = component.ref
        return responses


# The name of each shared error response, by status.
ERROR_NAMES = {
    "400": "Invalid",
    "401": "Unauthenticated",
    "403": "Forbidden",
    "404": "NotFound",
    "409": "Conflict",
    "413": "TooLarge",
    "415": "UnsupportedMediaType",
    "429": "LockedOut",
}

HEADERS = {
    "401": {"WWW-Authenticate": {"schema": {"type": "string", "enum": ["Token"]}}},
    "429": {
        "Retry-After": {
            "schema": {"type": "integer"},
            "description": "Seconds until the lockout ends (at the latest).",
        }
    },
}


def _error_response(code: str) -> ResolvedComponent:
    schema = {"description": ERRORS[code], "content": {"application/json": {"schema": ERROR.ref}}}
    if code in HEADERS:
        schema["headers"] = HEADERS[code]
    return ResolvedComponent(
        name=ERROR_NAMES[code], type=ResolvedComponent.RESPONSE, object=ERROR_NAMES[code], schema=schema
    )


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "An API token made at /account/tokens/, sent as `Authorization: Token <token>`. "
            "A token of the ci scope only reports staging runs.",
        }


class VerifiedSessionScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api.authentication.VerifiedSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "The browser's session once it has passed the second factor; writes also "
            "send the CSRF token (X-CSRFToken).",
        }
