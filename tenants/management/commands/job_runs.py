from typing import Any

from tenants.management.base import TenantCommand
from tenants.models import JobRun


class Command(TenantCommand):
    help = "Show a company's most recent automation runs."

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument("--limit", type=int, default=20)

    def handle(self, *args: Any, **options: Any) -> None:
        runs = JobRun.objects.order_by("-started_at")[: options["limit"]]
        if not runs:
            self.stdout.write("No runs yet.")
        for run in runs:
            progress = f"{run.progress_done}/{run.progress_total or '?'}"
            self.stdout.write(
                f"{run.started_at:%Y-%m-%d %H:%M:%S}  {run.kind:<30} {run.outcome:<10} {progress}"
            )
