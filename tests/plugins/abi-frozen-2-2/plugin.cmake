junction_add_plugin(abi-frozen-2-2 ${CMAKE_CURRENT_LIST_DIR}/abi_frozen_2_2.c)

# The live ABI against the frozen 2.2 header: a field moved or resized since 2.2 fails this build.
set(JN_ABI_LAYOUT_CHECK_2_2 ${CMAKE_BINARY_DIR}/abi_layout_check_2_2.cpp)
add_custom_command(OUTPUT ${JN_ABI_LAYOUT_CHECK_2_2}
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/abi/gen_layout_check.py
          ${CMAKE_SOURCE_DIR}/tests/abi/frozen/abi_2_2.h ${JN_ABI_LAYOUT_CHECK_2_2}
  DEPENDS ${CMAKE_SOURCE_DIR}/tests/abi/gen_layout_check.py ${CMAKE_SOURCE_DIR}/tests/abi/abi_fields.py
          ${CMAKE_SOURCE_DIR}/tests/abi/frozen/abi_2_2.h ${CMAKE_SOURCE_DIR}/sdk/include/junction/abi.h
  COMMENT "ABI layout check against the frozen 2.2 header")
add_library(abi_layout_check_2_2 OBJECT ${JN_ABI_LAYOUT_CHECK_2_2})
target_link_libraries(abi_layout_check_2_2 PRIVATE junction_sdk)
add_dependencies(abi-frozen-2-2 abi_layout_check_2_2)
