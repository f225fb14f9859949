from django import template

from automations.models import Workspace
from instagram.selectors import workspace_list_token_attention

register = template.Library()


@register.simple_tag
def token_attention_workspaces() -> list[Workspace]:
    """For the admin index's banner: active workspaces whose token is expired or expiring."""
    return list(workspace_list_token_attention()[:20])
