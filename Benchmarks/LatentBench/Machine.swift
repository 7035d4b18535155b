import Foundation
import LatentCore

/// What the figures were measured on.
struct Machine: Codable {
    var cpu: String
    var cores: Int
    var blas: String
    /// The GEMM kernel OpenBLAS runs, and the one it would have run by itself (`BLASKernel`).
    var blas_kernel: String
    var blas_own_kernel: String
    var date: String
    /// GFLOP/s of the one-thread square GEMM at the start and at the end of the run, and end / start − 1.
    var gemm_peak_start: Double?
    var gemm_peak_end: Double?
    var drift: Double?

    static func describe(gemmPeakAtStart start: Double? = nil, atEnd end: Double? = nil) -> Machine {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) }
        return Machine(cpu: model ?? "unknown", cores: ProcessInfo.processInfo.activeProcessorCount,
                       blas: BLASThreads.configuration, blas_kernel: BLASKernel.current,
                       blas_own_kernel: BLASKernel.ownChoice, date: ISO8601DateFormatter().string(from: Date()),
                       gemm_peak_start: start, gemm_peak_end: end,
                       drift: start.flatMap { s in end.map { $0 / s - 1 } })
    }
}
