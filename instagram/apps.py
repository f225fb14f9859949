from django.apps import AppConfig


class InstagramConfig(AppConfig):
    """The Instagram platform: connecting accounts (OAuth), their tokens, webhook subscriptions."""

    name = "instagram"
    verbose_name = "Instagram"
