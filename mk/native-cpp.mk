# The C++ tests of the native core: aggregation and the exact high-watermark, without Python.
CPP_TEST_BUILD := build/native-cpp-tests

.PHONY: test-native-cpp
test-native-cpp: $(STAMP)/venv ## C++ tests of native/ (aggregation, high-watermark; no Python)
	cmake -S . -B $(CPP_TEST_BUILD) -DMEMLENS_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=Release \
	  -DPython_EXECUTABLE=$(abspath $(PY)) -Dpybind11_DIR=$$($(PY) -m pybind11 --cmakedir) >/dev/null
	cmake --build $(CPP_TEST_BUILD) --target memlens_native_tests
	$(CPP_TEST_BUILD)/memlens_native_tests

TEST_TARGETS += test-native-cpp
