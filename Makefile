# The one entry point. `make` builds build/hypervisor.bin; see README.md.
#
# Pipeline: C# --(Roslyn, no standard library)--> IL (.dll)
#              --(ILCompiler, --targetarch:arm64)--> AArch64 object
#           boot/*.s --(aarch64-linux-gnu-as)--> objects
#           all --(ld.lld -T linker.ld)--> build/hypervisor.elf --(objcopy)--> .bin

SHELL       := /bin/bash
BUILD       := build
RUN_CONFIG  ?= guest/configs/balloon.conf
ILC_VERSION := 10.0.12
NUGET_DIR   := $(or $(NUGET_PACKAGES),$(HOME)/.nuget/packages)
ILC         := $(NUGET_DIR)/runtime.linux-x64.microsoft.dotnet.ilcompiler/$(ILC_VERSION)/tools/ilc
SDK_DIR      = $(shell dotnet --list-sdks | tail -n 1 | sed -E 's/^([^ ]+) \[(.*)\]$$/\2\/\1/')
CSC          = $(SDK_DIR)/Roslyn/bincore/csc.dll
AS          := aarch64-linux-gnu-as
OBJCOPY     := aarch64-linux-gnu-objcopy
LD          := ld.lld

CSC_FLAGS := -nologo -nostdlib -noconfig -unsafe -optimize+ -debug:portable \
             -target:library -langversion:latest -runtimemetadataversion:v4.0.30319 \
             -nowarn:CS0649,CS0169,CS8500 -warnaserror+
ILC_FLAGS := --targetarch:arm64 --targetos:linux -O -g --nativelib
# A student tree (scripts/make-student writes .student at its top) has lab
# stubs that may leave a field written but never read: not an error there.
ifneq ($(wildcard .student),)
CSC_FLAGS += -nowarn:CS0414
endif

KERNEL_SRC := $(shell find kernel -name '*.cs' -not -path '*/obj/*' -not -path '*/bin/*')
# The guest is its own corelib too: it shares kernel/Runtime and the pure
# device-tree and ABI files with the hypervisor.
GUEST_SRC  := $(shell find guest -name '*.cs' -not -path '*/obj/*' -not -path '*/bin/*') \
              $(wildcard kernel/Runtime/*.cs) kernel/Boot/Fdt.cs kernel/Boot/BootArgs.cs \
              kernel/Arch/Mmio.cs kernel/Trap/HypercallAbi.cs
GUEST_ASM  := $(filter-out guest/boot/image_header.s,$(wildcard guest/boot/*.s))
GUEST_OBJ  := $(patsubst guest/boot/%.s,$(BUILD)/guest/%.o,$(GUEST_ASM))
BOOT_SRC   := $(wildcard boot/*.s)
BOOT_OBJ   := $(patsubst boot/%.s,$(BUILD)/boot/%.o,$(BOOT_SRC))

.PHONY: all deps run test unit bench profile debug clean check-build-tools check-run-tools linux-kit student grade pictures

all: $(BUILD)/hypervisor.bin $(BUILD)/guest.elf $(BUILD)/guest.bin $(BUILD)/guest.img

deps:
	scripts/install-deps

check-build-tools:
	@scripts/check-tools build

check-run-tools:
	@scripts/check-tools run

$(ILC): scripts/ilcompiler/ilcompiler.csproj
	dotnet restore scripts/ilcompiler/ilcompiler.csproj -p:IlcVersion=$(ILC_VERSION) --nologo -v quiet
	@test -x $@ || { echo "ILCompiler restore did not produce $@"; exit 1; }
	@touch $@

$(BUILD)/kernel.dll: $(KERNEL_SRC) | check-build-tools
	@mkdir -p $(BUILD)
	dotnet $(CSC) $(CSC_FLAGS) -out:$@ $(KERNEL_SRC)

$(BUILD)/kernel.o: $(BUILD)/kernel.dll $(ILC)
	$(ILC) $< -o $@.tmp --systemmodule:kernel $(ILC_FLAGS)
	scripts/check-fp-registers $@.tmp
	mv $@.tmp $@

$(BUILD)/boot/%.o: boot/%.s boot/asm.inc | check-build-tools
	@mkdir -p $(BUILD)/boot
	$(AS) -g -I boot -o $@ $<

$(BUILD)/hypervisor.elf: $(BOOT_OBJ) $(BUILD)/kernel.o linker.ld
	$(LD) -T linker.ld -nostdlib -static -o $@ $(BOOT_OBJ) $(BUILD)/kernel.o

$(BUILD)/hypervisor.bin: $(BUILD)/hypervisor.elf
	$(OBJCOPY) -O binary $< $@
	@echo "built $@ ($$(stat -c %s $@) bytes)"

$(BUILD)/guest.dll: $(GUEST_SRC) | check-build-tools
	@mkdir -p $(BUILD)
	dotnet $(CSC) $(CSC_FLAGS) -out:$@ $(GUEST_SRC)

$(BUILD)/guest.o: $(BUILD)/guest.dll $(ILC)
	$(ILC) $< -o $@ --systemmodule:guest $(ILC_FLAGS)

$(BUILD)/guest/%.o: guest/boot/%.s | check-build-tools
	@mkdir -p $(BUILD)/guest
	$(AS) -g -o $@ $<

$(BUILD)/guest.elf: $(GUEST_OBJ) $(BUILD)/boot/runtime.o $(BUILD)/guest.o guest/linker.ld
	$(LD) -T guest/linker.ld -nostdlib -static -o $@ $(GUEST_OBJ) $(BUILD)/boot/runtime.o $(BUILD)/guest.o

$(BUILD)/guest.bin: $(BUILD)/guest.elf
	$(OBJCOPY) -O binary $< $@

# The same guest as an arm64 Image, to exercise the Image loader.
$(BUILD)/guest-image.elf: $(GUEST_OBJ) $(BUILD)/guest/image_header.o $(BUILD)/boot/runtime.o $(BUILD)/guest.o guest/linker-image.ld
	$(LD) -T guest/linker-image.ld -nostdlib -static -o $@ $(BUILD)/guest/image_header.o $(GUEST_OBJ) $(BUILD)/boot/runtime.o $(BUILD)/guest.o

$(BUILD)/guest.img: $(BUILD)/guest-image.elf
	$(OBJCOPY) -O binary $< $@

run: all | check-run-tools
	scripts/hv-run $(RUN_CONFIG)

debug: all | check-run-tools
	scripts/hv-run --gdb $(RUN_CONFIG)

# The Linux guest kit: Debian's arm64 kernel and busybox, downloaded (and
# cached in build/linux-kit) at build time; the project ships no kernel.
LINUX_KIT := $(BUILD)/linux-kit/rootfs.cpio.gz
$(LINUX_KIT): scripts/linux-kit guest/linux/init $(wildcard guest/linux/tests/*.sh guest/linux/tools/*.S)
	scripts/linux-kit $(BUILD)/linux-kit

linux-kit: $(LINUX_KIT)

# Unit and integration tests (xunit). Integration tests boot build/hypervisor.bin,
# first on one CPU, then all of them again on two (HV_SMP=2; tests about one
# CPU's time-sharing pin --smp 1 themselves). The last line sums xunit's
# summaries as plain "N passed, N failed, N skipped".
DOTNET_TEST := dotnet test tests/tests.csproj --nologo -v quiet --logger "console;verbosity=normal"
test: all $(LINUX_KIT) | check-run-tools
	@set -o pipefail; : > $(BUILD)/test.log; \
	$(DOTNET_TEST) 2>&1 | tee -a $(BUILD)/test.log; one=$$?; \
	echo "== the QEMU tests again, on two CPUs (HV_SMP=2) =="; \
	HV_SMP=2 $(DOTNET_TEST) --filter "FullyQualifiedName~.Integration.&FullyQualifiedName!~.SmpTests.&FullyQualifiedName!~.LabTests." 2>&1 | tee -a $(BUILD)/test.log; two=$$?; \
	scripts/test-summary $(BUILD)/test.log; [ $$one = 0 ] && [ $$two = 0 ]

# Instruction-exact figures under -icount shift=0 (not part of make test):
# build/bench.json, and build/bench.html drawn from it (scripts/draw-bench).
bench: all $(LINUX_KIT) | check-run-tools
	scripts/bench
	scripts/draw-bench $(BUILD)/bench.json > $(BUILD)/bench.html
	@echo "written: $(BUILD)/bench.html"

# Where each exit's instructions go: the benchmark guests run with every
# hypervisor instruction traced (scripts/hv-run --trace), and
# scripts/profile-exits prints each kind of exit step by step, function by
# function (docs/performance.md explains the budget).
profile: all | check-run-tools
	scripts/hv-run --icount --timeout 300 --trace $(BUILD)/trace.log guest/configs/bench.conf > /dev/null
	scripts/profile-exits --top 3 $(BUILD)/trace.log
	scripts/hv-run --icount --timeout 300 --trace $(BUILD)/trace.log guest/configs/bench-switch.conf > /dev/null
	scripts/profile-exits --top 1 $(BUILD)/trace.log
	rm -f $(BUILD)/trace.log

unit:
	dotnet test tests/tests.csproj --nologo -v quiet --filter "Category!=Integration"

# The course's labs (docs/labs/): `make student [LABS="1 2"] [DEST=dir]`
# writes the student tree (the chosen labs' functions replaced by stubs);
# `make grade [LAB=n]` scores the labs on this tree.
DEST ?= $(BUILD)/student
student:
	scripts/make-student $(DEST) "$(LABS)"

grade: all | check-run-tools
	scripts/grade $(LAB)

# Figures for the handouts, drawn from real runs: build/walk.html is the
# lecture's two-dimensional walk as the guest's self-test's Walk hypercall
# made it, every memory access in its place (scripts/draw-walk);
# build/balloon.html the host's free frames at each step of the 128 MiB
# balloon demo (scripts/draw-balloon); build/shadow.html one address's path
# through the guest's tables beside its path through their shadow
# (scripts/draw-shadow).
pictures: all | check-run-tools
	scripts/hv-run --timeout 120 guest/configs/selftest.conf > $(BUILD)/selftest.log
	scripts/draw-walk $(BUILD)/selftest.log > $(BUILD)/walk.html
	scripts/hv-run --mem 512M --timeout 300 guest/configs/balloon.conf > $(BUILD)/balloon.log
	scripts/draw-balloon $(BUILD)/balloon.log > $(BUILD)/balloon.html
	scripts/hv-run --timeout 120 guest/configs/bench-paging-shadow.conf > $(BUILD)/shadow.log
	scripts/draw-shadow $(BUILD)/shadow.log > $(BUILD)/shadow.html
	@echo "written: $(BUILD)/walk.html $(BUILD)/balloon.html $(BUILD)/shadow.html"

clean:
	rm -rf $(BUILD) tests/bin tests/obj
