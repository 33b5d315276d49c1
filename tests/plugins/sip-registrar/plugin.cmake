# sip-registrar: a digest registrar, a UAS and an admin-driven UAC on sdk/sip (junction::sip).
junction_add_plugin(sip-registrar ${CMAKE_CURRENT_LIST_DIR}/sip_registrar.cpp)
target_link_libraries(sip-registrar PRIVATE junction::sip)
