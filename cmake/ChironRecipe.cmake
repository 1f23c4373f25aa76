# chiron_recipe(NAME SOURCES <files...> [LINK <libraries...>])
#
# Builds a Chiron recipe: a shared object (CMake MODULE library, file NAME.so) that the sandboxed
# worker dlopens. The sources implement include/chiron/recipe.h and end with CHIRON_RECIPE(Class).
# Providers reuse this function from their own CMake project:
#
#   find_package(Torch REQUIRED)
#   set(CHIRON_RECIPE_INCLUDE_DIR /path/to/chiron/include)   # only outside Chiron's tree
#   include(/path/to/chiron/cmake/ChironRecipe.cmake)
#   chiron_recipe(my_recipe SOURCES my_recipe.cc)
#
# The object must be built against the same libtorch and the same Chiron recipe ABI as the worker
# (the worker checks both at load time and refuses a mismatch). -Wl,--no-undefined makes a missing
# symbol a link error instead of a dlopen failure inside the sandbox.
if(NOT DEFINED CHIRON_RECIPE_INCLUDE_DIR)
  set(CHIRON_RECIPE_INCLUDE_DIR "${CMAKE_CURRENT_LIST_DIR}/../include")
endif()

function(chiron_recipe name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LINK" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "chiron_recipe(${name}): SOURCES is required")
  endif()
  if(NOT TARGET torch)
    message(FATAL_ERROR "chiron_recipe(${name}): call find_package(Torch REQUIRED) first")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  target_compile_features(${name} PRIVATE cxx_std_17)
  target_include_directories(${name} PRIVATE ${CHIRON_RECIPE_INCLUDE_DIR})
  target_link_libraries(${name} PRIVATE torch ${ARG_LINK})
  target_link_options(${name} PRIVATE -Wl,--no-undefined)
  set_target_properties(${name} PROPERTIES PREFIX "")
  if(COMMAND chiron_recipe_hook)
    chiron_recipe_hook(${name})  # Chiron's own tree adds its warning flags here
  endif()
endfunction()
