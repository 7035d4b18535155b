internal import CCPUFeatures
internal import CLinearAlgebra
import Foundation

/// Which GEMM kernel OpenBLAS runs, and the remedy when a DYNAMIC_ARCH OpenBLAS is older than the CPU: OpenBLAS
/// 0.3.21 (Debian 12) does not know e.g. Intel's Emerald Rapids and falls back to its generic SSE3 kernel, "Prescott",
/// which runs this engine's GEMMs several times slower than the AVX-512 kernel the CPU can run
/// (docs/PERFORMANCE.md § OpenBLAS kernel selection).
public enum BLASKernel {
    /// The kernel OpenBLAS runs, as it names it ("SkylakeX", "Haswell", "Prescott", …).
    public static var current: String { String(cString: openblas_get_corename()) }

    /// The variable through which OpenBLAS takes a kernel; it reads it once, while the library loads (before `main`).
    public static let environmentVariable = "OPENBLAS_CORETYPE"
    /// Set by `selectForThisCPU` for the process it re-executes: the kernel OpenBLAS had chosen by itself.
    static let fallbackVariable = "LATENT_OPENBLAS_OWN_KERNEL"

    /// The kernel to ask OpenBLAS for instead of `current`, or nil to keep it. Only a DYNAMIC_ARCH build that fell back
    /// to its generic kernel is overridden, never a kernel the user chose, and only with a kernel whose instructions
    /// the CPU's flags (as Linux lists them: enabled by the OS too) include.
    @usableFromInline package static func replacement(current: String, configuration: String, cpuFlags: Set<String>,
                                   userChoice: String?) -> String? {
        guard userChoice == nil, configuration.contains("DYNAMIC_ARCH"), current.lowercased() == "prescott" else {
            return nil
        }
        if cpuFlags.isSuperset(of: ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]) { return "SkylakeX" }
        if cpuFlags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        if cpuFlags.contains("avx") { return "Sandybridge" }
        return nil
    }

    /// The CPU's feature flags from /proc/cpuinfo (empty where there is none: then nothing is replaced).
    @usableFromInline package static func cpuFlags(cpuinfo path: String = "/proc/cpuinfo") -> Set<String> {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let list = line.split(separator: ":", maxSplits: 1).last else { return [] }
        return Set(list.split(separator: " ").map(String.init))
    }

    /// The flags this CPU has by both /proc/cpuinfo (which says the OS enables them) and its CPUID instruction
    /// (which, under an emulator, describes the emulated CPU rather than the host's).
    @usableFromInline package static func usableCPUFlags() -> Set<String> {
        let bits = latent_cpu_features()
        var cpuid: Set<String> = []
        if bits & 1 != 0 { cpuid.insert("avx") }
        if bits & 2 != 0 { cpuid.formUnion(["avx2", "fma"]) }
        if bits & 4 != 0 { cpuid.formUnion(["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]) }
        return cpuFlags().intersection(cpuid)
    }

    /// The kernel this process should ask OpenBLAS for, or nil when OpenBLAS's own choice stands.
    static var betterKernel: String? {
        replacement(current: current, configuration: String(cString: openblas_get_config()),
                    cpuFlags: usableCPUFlags(), userChoice: ProcessInfo.processInfo.environment[environmentVariable])
    }

    /// Writes one line to standard error, once per process, when OpenBLAS runs its generic fallback kernel on a CPU
    /// that could run a faster one; the library never changes its host process (only a program's `main` can, with
    /// `selectForThisCPU`, or its user, by setting `OPENBLAS_CORETYPE` before starting it).
    public static func noteIfFallback() { _ = fallbackNote }

    static let fallbackNote: Void = {
        guard let kernel = betterKernel else { return }
        let line = "note: OpenBLAS runs its generic \(current) kernel on this CPU, several times slower at the GEMMs; "
            + "set \(environmentVariable)=\(kernel) before the process starts to run its \(kernel) kernel\n"
        FileHandle.standardError.write(Data(line.utf8))
    }()

    /// Re-executes this process with `OPENBLAS_CORETYPE` set when `replacement` names a kernel: the only way to choose
    /// one, since OpenBLAS reads the variable while loading. Call first thing in `main`; it returns when there is
    /// nothing to do or the exec fails (then OpenBLAS's own kernel stays, only slower). Set `OPENBLAS_CORETYPE`
    /// yourself to keep any kernel, OpenBLAS's fallback included.
    public static func selectForThisCPU() {
        guard let kernel = betterKernel else { return }
        setenv(fallbackVariable, current, 1)
        setenv(environmentVariable, kernel, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv(environmentVariable)
        unsetenv(fallbackVariable)
    }

    /// The kernel OpenBLAS would run by itself: `current`, unless `selectForThisCPU` replaced it.
    public static var ownChoice: String { ProcessInfo.processInfo.environment[fallbackVariable] ?? current }

    /// The kernel for a log line: "SkylakeX", or "SkylakeX (OpenBLAS's own choice on this CPU: Prescott)" when
    /// `selectForThisCPU` chose it.
    public static var summary: String {
        ownChoice == current ? current : "\(current) (OpenBLAS's own choice on this CPU: \(ownChoice))"
    }
}
