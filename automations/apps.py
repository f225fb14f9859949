from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save, pre_save


class AutomationsConfig(AppConfig):
    name = "automations"
    verbose_name = "Automations"

    def ready(self) -> None:
        from automations import signals
        from automations.models import Automation, Workspace

        pre_save.connect(
            signals.workspace_remember_previous, sender=Workspace, dispatch_uid="automations.workspace.previous"
        )
        post_save.connect(signals.workspace_changed, sender=Workspace, dispatch_uid="automations.workspace.saved")
        post_delete.connect(signals.workspace_changed, sender=Workspace, dispatch_uid="automations.workspace.deleted")
        pre_save.connect(
            signals.automation_remember_previous, sender=Automation, dispatch_uid="automations.automation.previous"
        )
        post_save.connect(signals.automation_changed, sender=Automation, dispatch_uid="automations.automation.saved")
        post_delete.connect(
            signals.automation_changed, sender=Automation, dispatch_uid="automations.automation.deleted"
        )
