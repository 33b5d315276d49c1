# gb28181 MANSCDP layer (src/manscdp/README.md): bodies (charset, pre-scrub, pugixml) and the
# device-command logic (CommandCenter). Included by plugins/gb28181/CMakeLists.txt, which links
# the plugin to gb28181_manscdp. A static, position-independent, hidden-visibility library: it
# ends up inside the plugin's .so and exports nothing.
set(JN_MANSCDP_DIR ${CMAKE_CURRENT_LIST_DIR})
find_package(pugixml QUIET)
if(TARGET pugixml::pugixml)
  set(JN_PUGIXML pugixml::pugixml)
elseif(TARGET pugixml)
  set(JN_PUGIXML pugixml)
else()
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(JN_PUGIXML_PC REQUIRED IMPORTED_TARGET pugixml)
  set(JN_PUGIXML PkgConfig::JN_PUGIXML_PC)
endif()

add_library(gb28181_manscdp STATIC ${JN_MANSCDP_DIR}/body.cpp ${JN_MANSCDP_DIR}/commands.cpp
  ${JN_MANSCDP_DIR}/ptz.cpp)
target_include_directories(gb28181_manscdp PUBLIC ${JN_MANSCDP_DIR})
target_link_libraries(gb28181_manscdp PUBLIC junction_sdk junction::sip ${JN_PUGIXML})
set_target_properties(gb28181_manscdp PROPERTIES POSITION_INDEPENDENT_CODE ON
  CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
target_compile_options(gb28181_manscdp PRIVATE $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-fno-gnu-unique>)

if(NOT JN_FUZZ)
  file(GLOB JN_MANSCDP_TESTS CONFIGURE_DEPENDS ${JN_MANSCDP_DIR}/tests/*.cpp)
  add_executable(gb28181_manscdp_test ${JN_MANSCDP_TESTS} ${CMAKE_SOURCE_DIR}/tests/unit/doctest_main.cpp)
  target_link_libraries(gb28181_manscdp_test PRIVATE gb28181_manscdp doctest::doctest)
  target_compile_definitions(gb28181_manscdp_test PRIVATE JN_MANSCDP_TEST_DIR="${JN_MANSCDP_DIR}/tests")
  add_test(NAME gb28181.unit_manscdp COMMAND gb28181_manscdp_test)
endif()

# Fuzz targets: the body layer alone, and bodies fed to a CommandCenter over a fake link.
junction_add_fuzz_target(fuzz_gb28181_body SOURCES ${JN_MANSCDP_DIR}/fuzz/fuzz_body.cpp
  CORPUS ${JN_MANSCDP_DIR}/fuzz/corpus_body LIBS gb28181_manscdp)
junction_add_fuzz_target(fuzz_gb28181_commands SOURCES ${JN_MANSCDP_DIR}/fuzz/fuzz_commands.cpp
  CORPUS ${JN_MANSCDP_DIR}/fuzz/corpus_commands LIBS gb28181_manscdp)
