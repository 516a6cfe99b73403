"""The run's journal: the append-only record of everything a run did, from which every report
is rebuilt. The runner writes it (:class:`Journal`); reports read it (:func:`read_journal`)."""

from mlchaos.journal._file import Journal, read_journal

__all__ = ["Journal", "read_journal"]
