using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Hypervisor.Arch;
using Hypervisor.Tests.Support;
using Xunit;

namespace Hypervisor.Tests.Unit
{
    // The EL2 registers that exist only with their feature
    // (kernel/Arch/FeatureRegisters.cs): which ones a CPU writes at boot, with
    // what, and whether boot/sysreg.s writes the register each index names.
    // No CPU model of the QEMU this project runs on has FEAT_FGT or MPAM, so
    // this is where a register left UNKNOWN on such a CPU would show.
    public class FeatureRegistersTests
    {
        private const ulong Cortexa72Mmfr0 = 0x1124, Cortexa72Mmfr1 = 0x0, Cortexa72Pfr0 = 0x1100_0000_0000_2222, Cortexa72Pfr1 = 0;
        private const ulong Hcx = 1UL << 40, Fgt = 1UL << 56, Fgt2 = 2UL << 56, MpamV1 = 1UL << 40, MpamFrac = 1UL << 16;

        private static uint Bits(params FeatureRegister[] registers) => registers.Aggregate(0u, (m, r) => m | 1u << (int)r);

        private static readonly FeatureRegister[] FineGrained =
            { FeatureRegister.Hfgrtr, FeatureRegister.Hfgwtr, FeatureRegister.Hfgitr, FeatureRegister.Hdfgrtr, FeatureRegister.Hdfgwtr };
        private static readonly FeatureRegister[] FineGrained2 =
            { FeatureRegister.Hfgrtr2, FeatureRegister.Hfgwtr2, FeatureRegister.Hfgitr2, FeatureRegister.Hdfgrtr2, FeatureRegister.Hdfgwtr2 };

        [Fact]
        public void AnArmv8Point0CpuHasNoneOfThem()
        {
            Assert.Equal(0u, FeatureRegisters.Present(Cortexa72Mmfr0, Cortexa72Mmfr1, Cortexa72Pfr0, Cortexa72Pfr1, 0));
        }

        [Fact]
        public void EachFeatureBringsItsOwnRegistersAndNoOthers()
        {
            Assert.Equal(Bits(FeatureRegister.Hcrx), FeatureRegisters.Present(Cortexa72Mmfr0, Hcx, Cortexa72Pfr0, 0, 0));
            Assert.Equal(Bits(FineGrained), FeatureRegisters.Present(Cortexa72Mmfr0 | Fgt, 0, Cortexa72Pfr0, 0, 0));
            Assert.Equal(Bits(FineGrained.Concat(FineGrained2).ToArray()), FeatureRegisters.Present(Cortexa72Mmfr0 | Fgt2, 0, Cortexa72Pfr0, 0, 0));
            uint mpam = Bits(FeatureRegister.Mpam2, FeatureRegister.Mpam1El1, FeatureRegister.Mpam0El1);
            Assert.Equal(mpam, FeatureRegisters.Present(Cortexa72Mmfr0, 0, Cortexa72Pfr0 | MpamV1, 0, 0));
            Assert.Equal(mpam, FeatureRegisters.Present(Cortexa72Mmfr0, 0, Cortexa72Pfr0, MpamFrac, 0));   // MPAM v0.1
            Assert.Equal(mpam | Bits(FeatureRegister.Mpamhcr),
                         FeatureRegisters.Present(Cortexa72Mmfr0, 0, Cortexa72Pfr0 | MpamV1, 0, FeatureRegisters.MpamidrHasHcr));
            // MPAMIDR_EL1 means nothing without MPAM (the caller reads 0 then anyway).
            Assert.Equal(0u, FeatureRegisters.Present(Cortexa72Mmfr0, 0, Cortexa72Pfr0, 0, FeatureRegisters.MpamidrHasHcr));
        }

        [Fact]
        public void ACpuWithEverythingWritesEveryOne()
        {
            uint all = FeatureRegisters.Present(Fgt2, Hcx, MpamV1, 0, ~0UL);
            Assert.Equal((1u << (int)FeatureRegister.Count) - 1, all);
        }

        // Zero everywhere (no fine-grained trap of what guests use, every
        // nXXX bit trapping what they do not have), except MPAM's traps.
        [Fact]
        public void OnlyMpamsTrapsAreSet()
        {
            for (var r = FeatureRegister.Hcrx; r < FeatureRegister.Count; r++)
            {
                ulong expected = r == FeatureRegister.Mpam2 ? (1UL << 48 | 1UL << 49) : r == FeatureRegister.Mpamhcr ? 1UL << 31 : 0;
                Assert.Equal(expected, FeatureRegisters.Value(r));
            }
        }

        // The Arm ARM's encodings (op0, op1, CRn, CRm, op2) of each register.
        private static readonly (FeatureRegister, string, string)[] Encodings =
        {
            (FeatureRegister.Hcrx, "HCRX_EL2", "S3_4_C1_C2_2"),
            (FeatureRegister.Hfgrtr, "HFGRTR_EL2", "S3_4_C1_C1_4"),
            (FeatureRegister.Hfgwtr, "HFGWTR_EL2", "S3_4_C1_C1_5"),
            (FeatureRegister.Hfgitr, "HFGITR_EL2", "S3_4_C1_C1_6"),
            (FeatureRegister.Hdfgrtr, "HDFGRTR_EL2", "S3_4_C3_C1_4"),
            (FeatureRegister.Hdfgwtr, "HDFGWTR_EL2", "S3_4_C3_C1_5"),
            (FeatureRegister.Hfgrtr2, "HFGRTR2_EL2", "S3_4_C3_C1_2"),
            (FeatureRegister.Hfgwtr2, "HFGWTR2_EL2", "S3_4_C3_C1_3"),
            (FeatureRegister.Hfgitr2, "HFGITR2_EL2", "S3_4_C3_C1_7"),
            (FeatureRegister.Hdfgrtr2, "HDFGRTR2_EL2", "S3_4_C3_C1_0"),
            (FeatureRegister.Hdfgwtr2, "HDFGWTR2_EL2", "S3_4_C3_C1_1"),
            (FeatureRegister.Mpam2, "MPAM2_EL2", "S3_4_C10_C5_0"),
            (FeatureRegister.Mpamhcr, "MPAMHCR_EL2", "S3_4_C10_C4_0"),
            (FeatureRegister.Mpam1El1, "MPAM1_EL1", "S3_0_C10_C5_0"),
            (FeatureRegister.Mpam0El1, "MPAM0_EL1", "S3_0_C10_C5_1"),
        };

        // write_feature_register's table: entry n writes the register
        // FeatureRegister n names, and the bound check admits exactly those.
        [Fact]
        public void TheAssemblyTableWritesTheRegisterEachIndexNames()
        {
            string text = File.ReadAllText(Repo.Path("boot", "sysreg.s"));
            int start = text.IndexOf("write_feature_register:", StringComparison.Ordinal);
            Assert.True(start >= 0, "write_feature_register not found in boot/sysreg.s");
            string body = text.Substring(start, text.IndexOf("ret", start, StringComparison.Ordinal) - start);
            Assert.Contains($"cmp     x0, #{(int)FeatureRegister.Count}", body);
            var entries = Regex.Matches(body, @"msr\s+(S\d_\d_C\d+_C\d+_\d),\s*x1\s*//\s*(\d+)\s+(\S+)\s*\n\s*b\s+2f")
                               .Select(m => (reg: m.Groups[1].Value, index: int.Parse(m.Groups[2].Value), name: m.Groups[3].Value)).ToArray();
            Assert.Equal((int)FeatureRegister.Count, entries.Length);
            Assert.Equal((int)FeatureRegister.Count, Encodings.Length);
            for (int n = 0; n < entries.Length; n++)
            {
                var (register, name, encoding) = Encodings.Single(e => (int)e.Item1 == n);
                Assert.Equal(n, entries[n].index);
                Assert.Equal(name, entries[n].name);
                Assert.Equal(encoding, entries[n].reg);
            }
        }
    }
}
