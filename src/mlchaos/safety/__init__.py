"""Production safety: blast-radius caps per environment, admission, schedules, rehearsal.

``SiteConfig`` holds the profiles (caps) of each environment, loaded by ``load_site``;
``admit`` refuses an experiment over its caps, a production run without confirmation or a
recent passed rehearsal; ``wait_for_window`` keeps a run inside its schedule's windows;
``rehearse`` injects each fault with no traffic share, checks it, removes it, and records the
result by the spec's hash.
"""

from mlchaos.safety._admission import Admission, admit, spec_hash, wait_for_window
from mlchaos.safety._caps import addresses, cap_violations, fault_targets, is_loopback
from mlchaos.safety._site import Profile, SiteConfig, load_site

__all__ = [
    "Admission",
    "Profile",
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
