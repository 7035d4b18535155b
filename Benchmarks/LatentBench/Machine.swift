import Foundation
import LatentCore

/// What the figures were measured on.
struct Machine: Codable {
    var cpu: String
    var cores: Int
    var blas: String
    var date: String

    static func describe() -> Machine {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) }
        return Machine(cpu: model ?? "unknown", cores: ProcessInfo.processInfo.activeProcessorCount,
                       blas: BLASThreads.configuration, date: ISO8601DateFormatter().string(from: Date()))
    }
}
