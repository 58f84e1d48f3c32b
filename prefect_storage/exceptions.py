"""Every error prefect-storage raises, rooted at :class:`FlowStorageError`.

Each subclass also inherits the built-in it refines, so callers may catch either. Where
Prefect 1 raised a ``ValueError`` for the same case (a flow not in storage, a missing
secret), that is a base too, so legacy ``except ValueError`` code keeps working::

    FlowStorageError(Exception)
    ├── MissingDependencyError(ModuleNotFoundError)   an optional extra is not installed
    ├── LocalStateError(OSError)                       the home folder or a file in it unusable
    ├── FlowNotFoundError(LookupError, ValueError)     name not in storage / object missing
    ├── FlowNameConflictError(ValueError)              add_flow with a name already present
    ├── StorageConfigError(ValueError)                 bad constructor argument or payload
    │   └── StorageTypeError(TypeError)                a payload value of a type the class refuses
    │   └── UnsupportedHTTPMethodError(RuntimeError)   a Webhook method not GET/PATCH/POST/PUT
    ├── SecretNotFoundError(KeyError, ValueError)      Secret / ${NAME} that resolves nowhere
    ├── SecretAccessError(ValueError)                  Secret.get while a flow is being built
    ├── FlowLoadError(ValueError)                      a script or module yields no such flow
    │   └── NotAFlowError(TypeError)                   a module path names something else
    ├── ResultLocationError(KeyError)                  a location template uses an unknown key
    ├── CorruptFlowError(ValueError)                   envelope damaged, truncated or tampered
    ├── FlowDeserializationError(RuntimeError)         unpickling failed (versions, modules)
    ├── FlowParameterError(ValueError)                 a run's parameter unknown or missing
    ├── SettingError(ValueError)                       a bad agent argument or env setting
    ├── BackendError(RuntimeError)                     the backend answered with an error
    │   ├── BucketNotFoundError(LookupError)           the bucket / container does not exist
    │   ├── BackendAuthError(PermissionError)          401/403, bad or missing credentials
    │   ├── LocalFileError(OSError)                    a flow or result file cannot be written
    │   └── BackendUnavailableError(ConnectionError)   unreachable, timed out, 5xx
    └── RegistryError                                  the flow registry refused a request
        ├── UnknownFlowError(LookupError)              no such flow, version or flow run
        ├── FlowRunParameterError(FlowParameterError)  unknown or missing flow-run parameter
        ├── RegistryUnavailableError(ConnectionError)  the registry database is unreachable
        └── RegistryNameError(ValueError)              a flow/agent/project name too long or bad
"""

from __future__ import annotations


class FlowStorageError(Exception):
    """Base of every error raised by prefect-storage."""


class MissingDependencyError(FlowStorageError, ModuleNotFoundError):
    """An optional SDK is needed; the message names the extra that installs it."""


class LocalStateError(FlowStorageError, OSError):
    """The home folder (``PREFECT_STORAGE_HOME``) or a file in it cannot be created, read
    or written (not a folder, read-only, disk full)."""


class FlowNotFoundError(FlowStorageError, LookupError, ValueError):
    """The requested flow is not in this storage, or its stored object is gone."""

    def __str__(self) -> str:
        # LookupError/KeyError would repr() the message; keep it readable.
        return str(self.args[0]) if self.args else ""


class FlowNameConflictError(FlowStorageError, ValueError):
    """A flow with the same name is already present in this storage."""


class StorageConfigError(FlowStorageError, ValueError):
    """A storage argument or serialized payload is invalid."""


class StorageTypeError(StorageConfigError, TypeError):
    """A payload value the storage's constructor refuses as a ``TypeError`` (it still is one)."""


class UnsupportedHTTPMethodError(StorageConfigError, RuntimeError):
    """A Webhook request method other than GET, PATCH, POST or PUT; also a
    ``RuntimeError``, as the legacy Webhook raised."""


class SecretNotFoundError(FlowStorageError, KeyError, ValueError):
    """A secret name resolves to nothing in context, environment or secrets file."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SecretAccessError(FlowStorageError, ValueError):
    """A secret was asked for where none may be read: while a flow is being built."""


class FlowLoadError(FlowStorageError, ValueError):
    """A flow script or module does not yield the requested flow."""


class NotAFlowError(FlowLoadError, TypeError):
    """A ``"module:attribute"`` path names an object that is not a flow (nor makes one)."""


class ResultLocationError(FlowStorageError, KeyError):
    """A result location or target template names a key the run does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CorruptFlowError(FlowStorageError, ValueError):
    """A stored flow failed its integrity checks; it was not unpickled."""


class FlowDeserializationError(FlowStorageError, RuntimeError):
    """Unpickling a flow failed; the message names the likely cause."""


class FlowParameterError(FlowStorageError, ValueError):
    """A flow was run with a parameter it does not declare, or without a required one."""


class SettingError(FlowStorageError, ValueError):
    """An agent argument or an environment setting has a value that makes no sense; the
    message names it and says what to give."""


class BackendError(FlowStorageError, RuntimeError):
    """A storage backend answered with an error."""


class BucketNotFoundError(BackendError, LookupError):
    """The bucket or container named by the storage does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class BackendAuthError(BackendError, PermissionError):
    """The backend refused the credentials (or none were found)."""


class LocalFileError(BackendError, OSError):
    """A flow or result file on this machine cannot be written (read-only, disk full)."""


class BackendUnavailableError(BackendError, ConnectionError):
    """The backend could not be reached or kept failing."""


class FlowVersionWarning(UserWarning):
    """A flow was pickled under different Python/cloudpickle/prefect-storage versions."""


class RegistryError(FlowStorageError):
    """The flow registry refused a request (unknown flow, version, run, bad parameters)."""


class UnknownFlowError(RegistryError, LookupError):
    """No registered flow (or flow version / flow run) matches."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RegistryUnavailableError(RegistryError, ConnectionError):
    """The registry database cannot be reached."""


class FlowRunParameterError(RegistryError, FlowParameterError):
    """A flow run was given an unknown parameter or lacks a required one (checked by the
    registry when the run is created)."""


class RegistryNameError(RegistryError, ValueError):
    """A flow, project or agent name the registry cannot hold (too long, control characters)."""
