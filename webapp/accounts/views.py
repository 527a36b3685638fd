import math

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.shortcuts import redirect, render

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


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a locked-out login (AXES_LOCKOUT_CALLABLE): 429 with Retry-After."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    limit = LimitExceeded(field="password", retry_after=seconds,
                          message=f"too many failed logins: this account is locked for {math.ceil(seconds / 60)} min from your address.")
    return with_retry_after(render(request, "registration/login.html", {"form": AuthenticationForm(), "limit": limit}, status=429), limit)
