import Foundation
import LatentCore
import LatentModels
import LatentTraining

/// The distributed section, run under `mpirun -np R latent-bench --only distributed` (docs/PERFORMANCE.md § Several
/// processes): the allreduce of the model's gradient, the R-rank step against one process with R threads at the same
/// global batch (alternating, so the machine's drift falls on both), and the projection to larger jobs.
extension BenchRunner {
    /// Network assumptions of the projection: bandwidth in Gb/s and the per-message latency α of MPI over it.
    static let networks: [(gigabits: Double, latency: Double, name: String)] = [
        (10, 30e-6, "10 Gb/s Ethernet, TCP"), (25, 5e-6, "25 Gb/s Ethernet, RoCE"), (100, 2e-6, "100 Gb/s InfiniBand")]

    mutating func distributed(_ mpi: OpenMPI) {
        let ranks = mpi.size, rank = mpi.rank
        let talk = rank == 0
        let base = StepConfig(batch: 100, latent: mode == .smoke ? 4 : 10, posterior: .diagonal, samples: 1,
                              threads: 1, parallelism: .reference)
        let gradientCount = makeTrainer(base).model.parameterCount
        // The allreduce alone: each repetition timed on every rank, the slowest rank's time counted.
        let buffer = Buffer<Float>(count: gradientCount)
        let calls = mode == .smoke ? 2 : 50
        let allreduce = Measurement.rate(repetitions: repetitions, warmup: 1, work: Double(calls)) {
            for _ in 0..<calls { mpi.allreduceSum(buffer.pointer, count: gradientCount) }
        }
        let allreduceSeconds = 1 / mpi.minimumOverRanks(allreduce.median)
        if talk {
            print("## Distributed (\(ranks) rank(s) × 1 thread against one process with \(ranks) thread(s), data "
                + "parallelism; CS236 model, k = \(base.latent), diagonal)")
            print(String(format: "allreduce of the gradient (%d floats, %.2f MB) in place: %.3f ms\n", gradientCount,
                         Double(gradientCount * 4) / 1e6, allreduceSeconds * 1e3))
            print("| batch | ranks | ms/step | samples/s | one process, \(ranks) threads, samples/s | ranks over one process |")
            print("|---:|---:|---:|---:|---:|---:|")
        }
        rows.append(Row(kind: "allreduce", threads: ranks, microseconds: allreduceSeconds * 1e6, rows_m: gradientCount))
        var stepSeconds: [Int: Double] = [:]
        for batch in mode == .smoke ? [8] : [100, 512] {
            var config = base
            config.batch = batch
            let distributed = makeTrainer(config, communicator: mpi)
            var local = config
            (local.threads, local.parallelism) = (ranks, ranks > 1 ? .data : .reference)
            // Every rank must run the same number of steps (each step is a collective): the ranks agree on the most.
            let steps = Int(mpi.maximumOverRanks(Double(stepsPerRepetition { trainSteps(distributed, 1) })))
            var rates: [Double] = [], ratios: [Double] = []
            for _ in 0..<repetitions {
                // The ranks together, then rank 0 alone while the others sleep (an MPI wait would spin on a core).
                let start = Date()
                trainSteps(distributed, steps)
                let seconds = mpi.maximumOverRanks(Date().timeIntervalSince(start))
                // The one process is made anew each time and ended before the ranks run again: its idle workers
                // poll, which would take time from the ranks. mpirun binds each rank to one core; the one process
                // gets every core, as a process of its own would (its workers inherit the mask when they start).
                let alone = mpi.maximumOverRanks(rank == 0 ? CoreMask.all.applied {
                    let single = makeTrainer(local)
                    trainSteps(single, 2)
                    let start = Date()
                    trainSteps(single, steps)
                    return Date().timeIntervalSince(start)
                } : { usleep(UInt32(min(seconds * 2 + 0.5, 60) * 1e6)); return 0 }())
                rates.append(Double(batch * steps) / seconds)
                ratios.append(alone / seconds)
            }
            let rate = Measurement(values: rates), ratio = Measurement(values: ratios).median
            stepSeconds[batch] = Double(batch) / rate.median
            rows.append(Row(kind: "distributed", batch: batch, latent: config.latent, posterior: "diagonal",
                            threads: ranks, parallelism: "ranks", samples_per_second: rate.median,
                            samples_per_second_min: rate.min, samples_per_second_max: rate.max, speedup: ratio))
            if talk {
                print(String(format: "| %d | %d | %.2f | %@ | %.0f | %.2f× |", batch, ranks, 1e3 * Double(batch)
                             / rate.median, format(rate, digits: 0), rate.median / ratio, ratio))
            }
        }
        if talk, let small = stepSeconds[100], let large = stepSeconds[512] {
            // A rank's step is (b / R)·c + f + T: two batches give c, and f what is left at batch 100.
            let c = (large - small) / (412 / Double(ranks))
            projection(perSample: c, fixed: max(0, small - 100 / Double(ranks) * c - allreduceSeconds),
                       gradientBytes: gradientCount * 4)
        }
        if talk { print() }
    }

    /// `steps` training steps on the trainer's first batches.
    func trainSteps(_ trainer: Trainer, _ steps: Int) {
        for s in 0..<steps { _ = try? trainer.trainStep(batch: s % trainer.stepsPerEpoch) }
    }

    /// The per-rank batch at which R ranks reach 90 % of R times one rank's samples/s, for a ring allreduce of the
    /// gradient: T = 2(R−1)α + 2(R−1)/R · bytes/β, and efficiency (b·c + f) / (b·c + f + T) with c the compute per
    /// sample and f the rest of a step (Adam on every rank).
    func projection(perSample c: Double, fixed f: Double, gradientBytes: Int) {
        print(String(format: "\nprojection (ring allreduce; measured compute %.1f µs/sample/rank, other %.2f ms/step): "
            + "per-rank batch for 90 %% scaling efficiency", c * 1e6, f * 1e3))
        print("| ranks | " + BenchRunner.networks.map { $0.name }.joined(separator: " | ") + " |")
        print("|---:|" + String(repeating: "---:|", count: BenchRunner.networks.count))
        for ranks in [8, 64, 512] {
            let r = Double(ranks)
            let cells = BenchRunner.networks.map { network -> String in
                let t = 2 * (r - 1) * network.latency + 2 * (r - 1) / r * Double(gradientBytes)
                    / (network.gigabits * 1e9 / 8)
                let batch = max(1, ((9 * t - f) / c).rounded(.up))
                return String(format: "%.0f (allreduce %.2f ms)", batch, t * 1e3)
            }
            print("| \(ranks) | " + cells.joined(separator: " | ") + " |")
        }
    }
}

extension OpenMPI {
    func maximumOverRanks(_ value: Double) -> Double { maximum(value) }
    func minimumOverRanks(_ value: Double) -> Double { -maximum(-value) }
}

/// The calling thread's CPU affinity: the distributed section runs the one-process side on every core although
/// mpirun bound the rank to one.
struct CoreMask {
    var set: cpu_set_t

    /// glibc's sched_getaffinity and sched_setaffinity (declared only under _GNU_SOURCE, so looked up by name).
    typealias Affinity = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32
    static let getAffinity = unsafeBitCast(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_getaffinity"),
                                           to: Affinity.self)
    static let setAffinity = unsafeBitCast(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_setaffinity"),
                                           to: Affinity.self)

    static func current() -> CoreMask {
        var set = cpu_set_t()
        _ = getAffinity(0, MemoryLayout<cpu_set_t>.size, &set)
        return CoreMask(set: set)
    }

    /// Every online core.
    static var all: CoreMask {
        var set = cpu_set_t()
        let cores = min(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), MemoryLayout<cpu_set_t>.size * 8)
        withUnsafeMutableBytes(of: &set) { bytes in
            for core in 0..<cores { bytes[core / 8] |= UInt8(1 << (core % 8)) }
        }
        return CoreMask(set: set)
    }

    /// Runs `body` on this mask, then restores the thread's previous one.
    func applied<R>(_ body: () -> R) -> R {
        var previous = CoreMask.current().set, mask = set
        _ = CoreMask.setAffinity(0, MemoryLayout<cpu_set_t>.size, &mask)
        defer { _ = CoreMask.setAffinity(0, MemoryLayout<cpu_set_t>.size, &previous) }
        return body()
    }
}
