import math

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from webapp.accounts import tokens as token_services
from webapp.accounts.models import TokenScope

from webapp.accounts import services
from webapp.jobs.limits import LimitExceeded, with_retry_after


def signup(request):
    form = UserCreationForm(data=request.POST or None)
    if request.method == "POST":
        ip_address = services.client_ip(request)
        try:
            services.check_signup(ip_address=ip_address)  # before the password hashing work
            if form.is_valid():
                user = services.signup_create(form=form, ip_address=ip_address)
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                return redirect("dashboard")
        except LimitExceeded as limit:
            return with_retry_after(render(request, "registration/signup.html", {"form": UserCreationForm(), "limit": limit}, status=429), limit)
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. the machine or script.")
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.WRITE)
    expires_in_days = forms.IntegerField(required=False, min_value=1, max_value=3650, initial=90,
                                         help_text="Empty: never expires.")


@login_required
def tokens(request):
    form = TokenForm(data=request.POST or None)
    context = {"form": form}
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                issued = token_services.token_create(user=request.user, **form.cleaned_data)
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                # Shown in this response only: the secret is never stored, so it cannot be shown again.
                context.update(new_token=issued.token, new_secret=issued.secret, form=TokenForm())
        status = 400 if form.errors else 200
    context["tokens"] = token_services.tokens_of_user(user=request.user)
    return render(request, "accounts/tokens.html", context, status=status)


@login_required
@require_POST
def token_revoke(request, token_id):
    if token_services.token_revoke(user=request.user, token_id=token_id):
        messages.success(request, "Token revoked.")
    return redirect("account_tokens")


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a locked-out login (AXES_LOCKOUT_CALLABLE): 429 with Retry-After."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    limit = LimitExceeded(field="password", retry_after=seconds,
                          message=f"too many failed logins: this account is locked for {math.ceil(seconds / 60)} min from your address.")
    return with_retry_after(render(request, "registration/login.html", {"form": AuthenticationForm(), "limit": limit}, status=429), limit)
