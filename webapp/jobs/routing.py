from django.urls import path

from webapp.jobs.consumers import JobConsumer

websocket_urlpatterns = [
    path("ws/jobs/<str:slug>/", JobConsumer.as_asgi()),
]
