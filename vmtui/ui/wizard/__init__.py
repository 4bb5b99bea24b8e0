"""The New-VM wizard: virt-manager's five steps, keyboard first.

1. install source (:mod:`.source`)  2. operating system (:mod:`.operating_system`)
3. memory and CPUs (:mod:`.resources`)  4. storage (:mod:`.storage`)
5. name, network and finish (:mod:`.finish`), with the optional kickstart
step (:mod:`.kickstart`) before it -- then optionally "Customize
configuration before install" (:mod:`.customize`), then the VM is created
by ``vmtui.core.create.installer``. ``F2`` shows the XML and the
virt-install line (:mod:`.preview`).

:class:`NewVmWizard` (:mod:`.screen`) holds the steps. Every step fills the
shared :class:`VmSpec`; validation comes from
``vmtui.core.create.validation.validate_spec`` (the same rules as ``vmtui
create``) and each message is shown under the field that caused it.
"""

from __future__ import annotations

from .context import HostContext, load_context, validate_with_context
from .customize import CustomizeScreen
from .finish import FinishStep
from .kickstart import KickstartStep
from .operating_system import OsStep
from .preview import PreviewScreen
from .resources import ResourcesStep
from .screen import CreateProgress, NewVmWizard
from .source import SourceStep
from .step import Step
from .storage import StorageStep

__all__ = [
    "CreateProgress", "CustomizeScreen", "FinishStep", "HostContext", "KickstartStep", "NewVmWizard",
    "OsStep", "PreviewScreen", "ResourcesStep", "SourceStep", "Step", "StorageStep", "load_context",
    "validate_with_context",
]
