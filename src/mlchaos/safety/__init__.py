"""Production safety: blast-radius caps per environment, admission, schedules, rehearsal.

``SiteConfig`` holds the profiles (caps) of each environment, loaded by ``load_site``;
``admit`` refuses an experiment over its caps, a production run without confirmation or a
recent passed rehearsal; ``wait_for_window`` keeps a run inside its schedule's windows;
``Registry`` is the private state directory of running experiments (one experiment per target,
the disable switch, what ``mlchaos halt`` stops).
"""

from mlchaos.safety._admission import Admission, admit, spec_hash, wait_for_window
from mlchaos.safety._caps import addresses, cap_violations, fault_targets, is_loopback
from mlchaos.safety._registry import Registry
from mlchaos.safety._site import Profile, SiteConfig, load_site

__all__ = [
    "Admission",
    "Profile",
    "Registry",
    "SiteConfig",
    "addresses",
    "admit",
    "cap_violations",
    "fault_targets",
    "is_loopback",
    "load_site",
    "spec_hash",
    "wait_for_window",
]
