import Foundation
import LatentCore

/// `latent train` as one rank of an `mpirun` job (docs/DISTRIBUTED.md): the launch checks that warn before a slow
/// run, and how a rank ends.
enum Ranks {
    /// The cores this process may run on (its CPU affinity, from /proc/self/status), nil where the system does not say.
    static func boundCores() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return nil }
        let mask = line.dropFirst("Cpus_allowed:".count).filter { $0.isHexDigit }
        return mask.reduce(0) { $0 + Int($1.hexDigitValue!).nonzeroBitCount }
    }

    /// Rank 0's warnings about the launch: more workers on this host than cores, or ranks bound (by mpirun's default
    /// `--bind-to core`) to fewer cores than their `--threads`. Collective: every rank must call it.
    static func launchWarnings(_ mpi: OpenMPI, threads: Int,
                               cores: Int = ProcessInfo.processInfo.activeProcessorCount) -> [String] {
        let bound = boundCores() ?? cores
        let short = mpi.sum(bound < threads ? 1 : 0)
        guard mpi.rank == 0 else { return [] }
        var warnings: [String] = []
        let local = mpi.localSize ?? 1
        if local * threads > cores {
            warnings.append("warning: \(local) rank(s) × --threads \(threads) on this host is more than its \(cores) "
                + "core(s): workers share cores and every step waits for the slowest; lower -np or --threads")
        }
        if short > 0 {
            warnings.append("warning: \(Int(short)) rank(s) are bound to fewer cores than --threads \(threads) (rank "
                + "0: \(bound)), so their workers share a core; launch with `mpirun --map-by slot:PE=\(threads)` "
                + "or `--bind-to none`, or use --threads \(bound)")
        }
        return warnings
    }
}
