# bindings/java/javac.cmake: compiles SWIG's generated .java files (GEN_DIR,
# whose names are known only once SWIG has run) with SOURCES ('|'-separated)
# into CLASSES and packs OUT. Run by the cachemeter.jar custom command (cmake -P).
string(REPLACE "|" ";" SOURCES "${SOURCES}")  # '|'-separated (CMakeLists.txt)
file(GLOB _generated ${GEN_DIR}/org/cachemeter/*.java)
if(NOT _generated)
  message(FATAL_ERROR "javac.cmake: no generated sources in ${GEN_DIR}")
endif()
file(REMOVE_RECURSE ${CLASSES})
file(MAKE_DIRECTORY ${CLASSES})
execute_process(
  COMMAND ${JAVAC} -encoding UTF-8 -Xlint:all -Xlint:-serial -Werror --release 11 -d ${CLASSES}
          ${_generated} ${SOURCES}
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "javac failed (${_rc})")
endif()
execute_process(COMMAND ${JAR} cf ${OUT} -C ${CLASSES} . RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "jar failed (${_rc})")
endif()
