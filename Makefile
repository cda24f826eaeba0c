# make demo | make test | make bench — each installs the Debian packages it needs that are missing
# (with sudo when not root), configures and builds with meson, then runs.
BUILD ?= build
MESON_FLAGS ?=
JOBS ?= $(shell nproc)

BUILD_PKGS := meson ninja-build g++ pkg-config libeigen3-dev doctest-dev zlib1g-dev nlohmann-json3-dev
DEMO_PKGS := $(BUILD_PKGS) python3-matplotlib
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
	./$(BUILD)/tools/plateau demo --out out/demo
	/usr/bin/python3 tools/plot_demo.py out/demo/loss.csv out/demo/loss.png

bench:
	$(call install,$(BENCH_PKGS))
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) $(MESON_FLAGS)
	meson configure $(BUILD) -Dbench=true
	ninja -C $(BUILD) -j $(JOBS)
	python3 experiments/bench/run.py --build $(BUILD)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')

clean:
	rm -rf $(BUILD)
