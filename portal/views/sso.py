"""Single sign-on entry points: mozilla-django-oidc's views, present only when SSO is configured."""

from django.conf import settings
from django.http import Http404
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

_begin = OIDCAuthenticationRequestView.as_view()
_callback = OIDCAuthenticationCallbackView.as_view()


def sso_begin(request):
    if not settings.OIDC_ENABLED:
        raise Http404("Single sign-on is not configured.")
    return _begin(request)


def sso_callback(request):
    if not settings.OIDC_ENABLED:
        raise Http404("Single sign-on is not configured.")
    return _callback(request)
