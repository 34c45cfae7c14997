# SPDX-License-Identifier: Apache-2.0
# cmake/cm_status_bindings_rule.cmake: the build rule of the bindings' status
# lists (included by bindings/CMakeLists.txt and bindings/java/CMakeLists.txt).
# cm_status_bindings(<template> <output> ...): writes each output from its
# template at build time, with the status lists of CM_STATUS_MAP
# (include/cachemeter/common.h) and the class table status_classes.cmake
# (the variables: cmake/cm_status_bindings.cmake).
function(cm_status_bindings)
  set(_files ${ARGN})
  set(_templates)
  set(_outputs)
  foreach(_f IN LISTS _files)
    if(_f MATCHES "[.]in$")
      list(APPEND _templates ${_f})
    else()
      list(APPEND _outputs ${_f})
    endif()
  endforeach()
  string(REPLACE ";" "|" _arg "${_files}")  # a list cannot cross the command line
  set(_script ${PROJECT_SOURCE_DIR}/cmake/cm_status_bindings.cmake)
  add_custom_command(OUTPUT ${_outputs}
    COMMAND ${CMAKE_COMMAND} -DCC=${CMAKE_C_COMPILER} -DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include
            -DTABLE=${PROJECT_SOURCE_DIR}/bindings/status_classes.cmake "-DFILES=${_arg}" -P ${_script}
    DEPENDS ${_script} ${_templates} ${PROJECT_SOURCE_DIR}/bindings/status_classes.cmake
            ${PROJECT_SOURCE_DIR}/include/cachemeter/common.h
    COMMENT "Status lists from CM_STATUS_MAP: ${_outputs}"
    VERBATIM)
endfunction()
