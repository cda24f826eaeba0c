# make demo | make test | make bench — each installs the Debian packages it needs that are missing
# (with sudo when not root), configures and builds with meson, then runs. make demo runs the main
# job (SGD vs SAM under label noise, experiments/label_noise) and writes runs/label_noise_demo/.
BUILD ?= build
MESON_FLAGS ?=
JOBS ?= $(shell nproc)

BUILD_PKGS := meson ninja-build g++ pkg-config libeigen3-dev doctest-dev zlib1g-dev nlohmann-json3-dev
DEMO_PKGS := $(BUILD_PKGS) python3-matplotlib dataset-fashion-mnist
BENCH_PKGS := $(BUILD_PKGS) libtorch-dev libopenblas0-pthread python3

# $(call install,packages): apt-get install only what dpkg does not already have.
define install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  echo "installing:$$missing"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi
endef

.PHONY: all demo test bench build clean format

all: build

build:
	$(call install,$(BUILD_PKGS))
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) $(MESON_FLAGS)
	ninja -C $(BUILD) -j $(JOBS)

test: build
	./$(BUILD)/tests/plateau-tests

demo:
	$(call install,$(DEMO_PKGS))
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) $(MESON_FLAGS)
	ninja -C $(BUILD) -j $(JOBS)
	./$(BUILD)/tools/plateau run label_noise_demo

bench:
	$(call install,$(BENCH_PKGS))
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) $(MESON_FLAGS)
	meson configure $(BUILD) -Dbench=true
	ninja -C $(BUILD) -j $(JOBS)
	python3 experiments/bench/run.py --build $(BUILD)

# make fuzz: the data parsers' libFuzzer entries (data/fuzz/), built with clang in their own build
# folder and run FUZZ_SECONDS each under AddressSanitizer; inputs libFuzzer finds stay in
# $(FUZZ_BUILD)/corpus-<parser> for the next run.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_PKGS := $(BUILD_PKGS) clang libclang-rt-dev

.PHONY: fuzz
fuzz:
	$(call install,$(FUZZ_PKGS))
	@test -f $(FUZZ_BUILD)/build.ninja || CC=clang CXX=clang++ meson setup $(FUZZ_BUILD) -Dfuzz=true \
	  -Db_sanitize=address -Db_lundef=false -Dbuildtype=debugoptimized -Dcuda=disabled $(MESON_FLAGS)
	ninja -C $(FUZZ_BUILD) -j $(JOBS) data/fuzz/fuzz_idx data/fuzz/fuzz_cifar data/fuzz/fuzz_csv
	@for p in idx cifar csv; do \
	  mkdir -p $(FUZZ_BUILD)/corpus-$$p; \
	  echo "fuzzing the $$p parser for $(FUZZ_SECONDS) s"; \
	  ./$(FUZZ_BUILD)/data/fuzz/fuzz_$$p -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(FUZZ_BUILD)/corpus-$$p data/fuzz/seeds/$$p || exit 1; \
	done

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')

clean:
	rm -rf $(BUILD)
