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

    static func describe() -> Machine {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) }
        return Machine(cpu: model ?? "unknown", cores: ProcessInfo.processInfo.activeProcessorCount,
                       blas: BLASThreads.configuration, blas_kernel: BLASKernel.current,
                       blas_own_kernel: BLASKernel.ownChoice, date: ISO8601DateFormatter().string(from: Date()))
    }
}
