# SPDX-License-Identifier: Apache-2.0
# The bindings' exception class for each negative status of CM_STATUS_MAP
# (include/cachemeter/common.h), read by cmake/cm_status_bindings.cmake.
# Names, numbers and messages come from CM_STATUS_MAP itself; this table adds
# only what C does not have: the class name (the same in Python and Java),
# the Python built-in exception the class also derives from ("" for none),
# and the sentence that documents it (docstring and Javadoc).
# A status in CM_STATUS_MAP without a row here fails the build, and a row
# naming a status CM_STATUS_MAP lacks fails it too: add the row with the status.
#              status           class             Python base    documentation
cm_status_class(CM_EINVAL       InvalidArgument   ValueError     "a bad argument, name, option or URI")
cm_status_class(CM_ENOMEM       OutOfMemory       MemoryError    "the library could not allocate")
cm_status_class(CM_EEXIST       AlreadyExists     ""             "the name is registered with another type, labels or buckets")
cm_status_class(CM_ELIMIT       LimitExceeded     ""             "max_series reached, or an entry larger than the cache allows")
cm_status_class(CM_EBACKEND     BackendError      ""             "the backend (or a loader) failed")
cm_status_class(CM_ETIMEOUT     Timeout           ""             "a backend or a wait for another caller's load timed out")
cm_status_class(CM_EUNAVAILABLE Unavailable       ""             "a backend cannot be reached, an address cannot be bound, or the library was built without the feature")
cm_status_class(CM_ECORRUPT     Corrupt           ""             "a file that is not ours, is damaged, or has a newer schema")
cm_status_class(CM_ESTATE       StateError        ""             "the object is not in a state that allows the call (a file owned by another process, a registry that does not persist, a closed handle)")
