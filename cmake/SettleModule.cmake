# One static library per folder of src/. A module's headers are reachable only
# through its own include root (build/inc/<module>/<module> -> src/<module>), and
# that root is propagated only along declared dependencies: a module that includes
# a header of a module it does not depend on fails to compile.

set(SETTLE_WARNINGS -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor -Wconversion
    -Wno-sign-conversion)
# GCC 12 at -O3 (Release) reports -Wrestrict inside libstdc++'s own
# std::string code (GCC bug 105329): a false positive that would stop the
# Release build bench/run needs.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND SETTLE_WARNINGS $<$<CONFIG:Release>:-Wno-restrict>)
endif()
if(SETTLE_SANITIZE)
  set(SETTLE_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=all)
  add_compile_options(${SETTLE_SANITIZER_FLAGS})
  add_link_options(${SETTLE_SANITIZER_FLAGS})
endif()

function(settle_options target)
  target_compile_options(${target} PRIVATE ${SETTLE_WARNINGS})
endfunction()

function(settle_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(root ${CMAKE_BINARY_DIR}/inc/${name})
  file(MAKE_DIRECTORY ${root})
  if(NOT EXISTS ${root}/${name})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${name} ${root}/${name} SYMBOLIC)
  endif()
  add_library(settle_${name} STATIC ${ARG_SOURCES})
  target_include_directories(settle_${name} PUBLIC ${root})
  target_link_libraries(settle_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  settle_options(settle_${name})
endfunction()
