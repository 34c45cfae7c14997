# SPDX-License-Identifier: Apache-2.0
# cmake/cm_status_bindings.cmake: writes the bindings' status lists from the
# one CM_STATUS_MAP of include/cachemeter/common.h (cmake -P, run by the
# bindings' custom commands at build time), so a status exists in C, Python
# and Java or fails the build.
#
#   cmake -DCC=<C compiler> -DINCLUDE_DIR=<include/> -DTABLE=<status_classes.cmake>
#         "-DFILES=<template>|<output>|..." -P cm_status_bindings.cmake
#
# The status list is what the C preprocessor makes of CM_STATUS_MAP (GCC and
# Clang: -E -P), not a regex over the header, so the bindings see exactly the
# list the library is compiled from. TABLE adds the class name, Python base
# and documentation of each negative status (bindings/status_classes.cmake).
# Each template is configured with @ONLY (and the output touched, so the
# build does not rerun the command). Variables a template can use:
#   CM_PY_ERROR_NAMES        "InvalidArgument",<newline+4 spaces>"OutOfMemory", ... (__all__ items)
#   CM_PY_ERROR_CLASSES      one class per negative status, subclassing Error
#   CM_PY_ERROR_TUPLE        InvalidArgument,<newline+4 spaces>OutOfMemory, ... (8 spaces: a tuple's items)
#   CM_PYI_STATUSES          "CM_OK: int" lines for the extension's stub
#   CM_JAVA_STATUS_CONSTANTS "public static final int EINVAL = cm_status.CM_EINVAL;" lines
#   CM_JAVA_CREATE_CASES     "case Status.EINVAL: return new InvalidArgument(message);" lines
#   CM_JAVA_EXCEPTION_CLASSES one nested class per negative status
cmake_minimum_required(VERSION 3.16)
foreach(_v CC INCLUDE_DIR TABLE FILES)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "cm_status_bindings.cmake: -D${_v}= is required")
  endif()
endforeach()

# ---- CM_STATUS_MAP through the preprocessor: one "CM__ROW NAME (VALUE) MSG" per status
string(REPLACE "|" ";" FILES "${FILES}")
list(GET FILES 1 _first_out)
get_filename_component(_first_out "${_first_out}" NAME)
set(_rows_c "${CMAKE_CURRENT_BINARY_DIR}/${_first_out}.status_rows.c")  # the command's working directory
file(WRITE "${_rows_c}"
  "#include <cachemeter/common.h>\n"
  "#define CM__ROW(name, value, msg) CM__ROW name (value) msg\n"
  "CM_STATUS_MAP(CM__ROW)\n")
execute_process(COMMAND "${CC}" -E -P "-I${INCLUDE_DIR}" "${_rows_c}"
  OUTPUT_VARIABLE _pp ERROR_VARIABLE _pp_err RESULT_VARIABLE _rc)
file(REMOVE "${_rows_c}")
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "cm_status_bindings.cmake: preprocessing CM_STATUS_MAP failed (${_rc}): ${_pp_err}")
endif()
string(REGEX MATCHALL "CM__ROW[ \t]+[A-Za-z0-9_]+[ \t]*\\([^)]*\\)" _rows "${_pp}")
if(NOT _rows)
  message(FATAL_ERROR "cm_status_bindings.cmake: no CM_STATUS_MAP rows in ${INCLUDE_DIR}/cachemeter/common.h")
endif()
set(_names)
foreach(_row ${_rows})
  string(REGEX REPLACE "CM__ROW[ \t]+([A-Za-z0-9_]+)[ \t]*\\(([^)]*)\\)" "\\1;\\2" _pair "${_row}")
  list(GET _pair 0 _name)
  list(GET _pair 1 _value)
  string(REPLACE " " "" _value "${_value}")
  math(EXPR _value "${_value}")
  if(NOT _name MATCHES "^CM_[A-Z0-9_]+$" OR DEFINED _value_${_name})
    message(FATAL_ERROR "cm_status_bindings.cmake: bad or repeated status name ${_name}")
  endif()
  set(_value_${_name} ${_value})
  list(APPEND _names ${_name})
endforeach()

# ---- the bindings' table
set(_table_names)
function(cm_status_class status class base doc)
  if(NOT DEFINED _value_${status})
    message(FATAL_ERROR "${TABLE}: ${status} is not in CM_STATUS_MAP (include/cachemeter/common.h)")
  endif()
  if(NOT class MATCHES "^[A-Z][A-Za-z0-9]*$" OR DEFINED _class_of_${status} OR DEFINED _status_of_${class})
    message(FATAL_ERROR "${TABLE}: bad or repeated class name \"${class}\", or a second row for ${status}")
  endif()
  set(_status_of_${class} "${status}" PARENT_SCOPE)
  set(_class_of_${status} "${class}" PARENT_SCOPE)
  set(_base_of_${status} "${base}" PARENT_SCOPE)
  set(_doc_of_${status} "${doc}" PARENT_SCOPE)
endfunction()
include("${TABLE}")

# Greedy word wrap of `text` into lines of at most `width` characters, the
# first after `first` and the others after `indent`.
function(cm_wrap out first indent width text)
  string(REPLACE " " ";" _words "${text}")
  set(_result "${first}")
  set(_line "${first}")
  set(_fresh TRUE)
  foreach(_w ${_words})
    string(LENGTH "${_line} ${_w}" _len)
    if(NOT _fresh AND _len GREATER width)
      string(APPEND _result "\n${indent}${_w}")
      set(_line "${indent}${_w}")
    elseif(_fresh)
      string(APPEND _result "${_w}")
      string(APPEND _line "${_w}")
    else()
      string(APPEND _result " ${_w}")
      string(APPEND _line " ${_w}")
    endif()
    set(_fresh FALSE)
  endforeach()
  set(${out} "${_result}" PARENT_SCOPE)
endfunction()

# ---- the fragments
set(CM_PY_ERROR_NAMES)
set(CM_PY_ERROR_CLASSES)
set(CM_PY_ERROR_TUPLE)
set(CM_PYI_STATUSES)
set(CM_JAVA_STATUS_CONSTANTS)
set(CM_JAVA_CREATE_CASES)
set(CM_JAVA_EXCEPTION_CLASSES)
set(_first TRUE)
foreach(_name ${_names})
  string(REGEX REPLACE "^CM_" "" _short "${_name}")
  string(APPEND CM_PYI_STATUSES "${_name}: int\n")
  string(APPEND CM_JAVA_STATUS_CONSTANTS "  public static final int ${_short} = cm_status.${_name};\n")
  if(_value_${_name} GREATER_EQUAL 0)
    continue()  # CM_OK, CM_MISS: results, not errors
  endif()
  if(NOT DEFINED _class_of_${_name})
    message(FATAL_ERROR "${_name} (CM_STATUS_MAP, include/cachemeter/common.h) has no exception class: "
                        "add its row to ${TABLE}")
  endif()
  set(_class "${_class_of_${_name}}")
  set(_base "${_base_of_${_name}}")
  set(_doc "${_doc_of_${_name}}")
  if(NOT _first)
    string(APPEND CM_PY_ERROR_NAMES "\n    ")
    string(APPEND CM_PY_ERROR_TUPLE "\n        ")
  endif()
  set(_first FALSE)
  string(APPEND CM_PY_ERROR_NAMES "\"${_class}\",")
  string(APPEND CM_PY_ERROR_TUPLE "${_class},")
  if(_base)
    set(_bases "Error, ${_base}")
    set(_pydoc "${_name}: ${_doc} (also a ``${_base}``).")
  else()
    set(_bases "Error")
    set(_pydoc "${_name}: ${_doc}.")
  endif()
  cm_wrap(_pydoc "    \"\"\"" "    " 80 "${_pydoc}\"\"\"")
  string(APPEND CM_PY_ERROR_CLASSES
    "\n\nclass ${_class}(${_bases}):\n${_pydoc}\n    status = _core.${_name}\n")
  string(APPEND CM_JAVA_CREATE_CASES "      case Status.${_short}: return new ${_class}(message);\n")
  cm_wrap(_jdoc "  /** " "   * " 100 "${_name}: ${_doc}. */")
  string(APPEND CM_JAVA_EXCEPTION_CLASSES
    "${_jdoc}\n"
    "  public static final class ${_class} extends CachemeterException {\n"
    "    private static final long serialVersionUID = 1L;\n"
    "    ${_class}(String m) { super(Status.${_short}, m); }\n"
    "  }\n")
endforeach()
string(REGEX REPLACE "\n$" "" CM_PYI_STATUSES "${CM_PYI_STATUSES}")
string(REGEX REPLACE "\n$" "" CM_JAVA_STATUS_CONSTANTS "${CM_JAVA_STATUS_CONSTANTS}")
string(REGEX REPLACE "\n$" "" CM_JAVA_CREATE_CASES "${CM_JAVA_CREATE_CASES}")
string(REGEX REPLACE "\n$" "" CM_JAVA_EXCEPTION_CLASSES "${CM_JAVA_EXCEPTION_CLASSES}")
string(REGEX REPLACE "^\n\n" "" CM_PY_ERROR_CLASSES "${CM_PY_ERROR_CLASSES}")
string(REGEX REPLACE "\n$" "" CM_PY_ERROR_CLASSES "${CM_PY_ERROR_CLASSES}")

# ---- the outputs
list(LENGTH FILES _n)
math(EXPR _last "${_n} - 1")
foreach(_i RANGE 0 ${_last} 2)
  math(EXPR _j "${_i} + 1")
  list(GET FILES ${_i} _in)
  list(GET FILES ${_j} _out)
  configure_file("${_in}" "${_out}" @ONLY)
  file(TOUCH "${_out}")  # newer than every input, even when its text did not change
endforeach()
