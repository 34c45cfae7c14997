"""Exceptions: one class per negative status of the C API (common.h).

The extension raises them itself: at import this module hands
``_from_status`` to ``_core.register_errors``, and the binding's status
typemap calls it with the status and the calling thread's ``cm_errmsg()``.
"""
from __future__ import annotations

from typing import Dict, Optional, Type

from . import _core

__all__ = [
    "Error", "InvalidArgument", "OutOfMemory", "AlreadyExists", "LimitExceeded", "BackendError",
    "Timeout", "Unavailable", "Corrupt", "StateError",
]


class Error(Exception):
    """A failing cachemeter call.

    ``status`` is the C status (a negative ``CM_E*`` value), ``name`` its
    symbolic name (``"CM_EINVAL"``), and ``str(error)`` the library's message
    (``cm_errmsg()``), which names the function and what was wrong.

    Raising a subclass from a ``get_or_load`` loader hands that status to the
    callers waiting for the same key (any other exception hands them
    ``BackendError``); the loader's own caller gets the exception itself.
    """

    status: int = _core.CM_EBACKEND

    def __init__(self, message: str = "", status: Optional[int] = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def name(self) -> str:
        """The status's symbolic name, e.g. ``"CM_ELIMIT"``."""
        return _core.cm_status_name(self.status)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, status={self.status} {self.name})"


class InvalidArgument(Error, ValueError):
    """CM_EINVAL: a bad argument, name, option or URI (also a ``ValueError``)."""
    status = _core.CM_EINVAL


class OutOfMemory(Error, MemoryError):
    """CM_ENOMEM: the library could not allocate (also a ``MemoryError``)."""
    status = _core.CM_ENOMEM


class AlreadyExists(Error):
    """CM_EEXIST: the name is registered with another type, labels or buckets."""
    status = _core.CM_EEXIST


class LimitExceeded(Error):
    """CM_ELIMIT: max_series reached, or an entry larger than the cache allows."""
    status = _core.CM_ELIMIT


class BackendError(Error):
    """CM_EBACKEND: the backend (or a loader) failed."""
    status = _core.CM_EBACKEND


class Timeout(Error):
    """CM_ETIMEOUT: a backend or a wait for another caller's load timed out."""
    status = _core.CM_ETIMEOUT


class Unavailable(Error):
    """CM_EUNAVAILABLE: a backend cannot be reached, an address cannot be bound,
    or the library was built without the feature."""
    status = _core.CM_EUNAVAILABLE


class Corrupt(Error):
    """CM_ECORRUPT: a file that is not ours, is damaged, or has a newer schema."""
    status = _core.CM_ECORRUPT


class StateError(Error):
    """CM_ESTATE: the object is not in a state that allows the call (a file owned
    by another process, a registry that does not persist, a closed handle)."""
    status = _core.CM_ESTATE


_BY_STATUS: Dict[int, Type[Error]] = {
    cls.status: cls
    for cls in (InvalidArgument, OutOfMemory, AlreadyExists, LimitExceeded, BackendError, Timeout,
                Unavailable, Corrupt, StateError)
}


def _from_status(status: int, message: str) -> Error:
    """The exception for a C status (the typemap's factory)."""
    return _BY_STATUS.get(status, Error)(message, status)


_core.register_errors(Error, _from_status)
