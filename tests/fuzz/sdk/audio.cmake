# sdk/audio: arbitrary payloads from members (G.711 and Opus, any length) into the mixer.
if(TARGET junction_audio)
  junction_add_fuzz_target(fuzz_audio_mixer SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_audio_mixer.cpp
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/../corpus/audio_mixer LIBS junction_audio)
  set_target_properties(fuzz_audio_mixer PROPERTIES CXX_STANDARD 20)
endif()
