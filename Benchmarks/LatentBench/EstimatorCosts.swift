import CMallocCounter
import LatentModels

extension BenchRunner {
    /// The training step with STL or DReG against the standard estimator on the same model, batch and threads,
    /// timed in alternating repetitions (MATH.md §10: the acceptance bound is a cost of at most 1.10×).
    mutating func estimatorCosts() {
        print("## Estimators (CS236 model, batch 100, the strategy `--threads` chooses; the step with each estimator "
            + "against the same step with the standard one)")
        print("| model | posterior | m | threads | estimator | samples/s | cost over standard |")
        print("|---|---|---:|---:|---|---|---:|")
        let batch = mode == .smoke ? 8 : 100, latent = mode == .smoke ? 4 : 10
        let cases: [(PosteriorKind, Int, PriorKind, [PathwiseEstimator])] = [
            (.diagonal, 1, .normal, [.stl]),
            (.diagonal, 10, .normal, [.stl, .dreg]),
            (.full, 10, .normal, [.dreg]),
            (.covariance, 10, .normal, [.dreg]),
            (.diagonal, 10, .mixture, [.dreg]),
        ]
        for threads in cores > 1 ? [1, cores] : [1] {
            for (posterior, samples, prior, estimators) in cases {
                let base = StepConfig(batch: batch, latent: latent, posterior: posterior,
                                      samples: mode == .smoke ? min(samples, 2) : samples, threads: threads,
                                      prior: prior)
                for estimator in estimators {
                    var config = base
                    config.estimator = estimator
                    let (allocations, bytes, parallelism) = allocationsPerStep(config)
                    let paired = pairedSpeedup(base, config)
                    let model = base.samples > 1 ? "iwae" : (prior == .mixture ? "gmvae" : "vae")
                    print(String(format: "| %@%@ | %@ | %d | %d | %@ | %@ | %.3f× |", model,
                                 prior == .mixture ? " (mixture)" : "", posterior.rawValue, base.samples, threads,
                                 estimator.rawValue, format(paired.rate, digits: 0), 1 / paired.speedup))
                    rows.append(Row(kind: "estimator_cost", name: estimator.rawValue, batch: batch, latent: latent,
                                    posterior: posterior.rawValue, samples: base.samples, threads: threads,
                                    parallelism: parallelism, samples_per_second: paired.rate.median,
                                    samples_per_second_min: paired.rate.min, samples_per_second_max: paired.rate.max,
                                    bytes_allocated_per_step: bytes, allocations_per_step: allocations,
                                    speedup: paired.speedup))
                }
            }
        }
        print()
    }

    /// Allocations and bytes per step of `config` after warm-up (none, in a release build), and its parallelism.
    func allocationsPerStep(_ config: StepConfig) -> (Double, Double, String) {
        let trainer = makeTrainer(config)
        trainer.beginEpoch(0)
        for b in 0..<3 { _ = try? trainer.trainStep(batch: b % trainer.stepsPerEpoch) }
        let allocationsBefore = latent_allocation_count(), bytesBefore = latent_allocated_bytes()
        for b in 3..<5 { _ = try? trainer.trainStep(batch: b % trainer.stepsPerEpoch) }
        return (Double(latent_allocation_count() - allocationsBefore) / 2,
                Double(latent_allocated_bytes() - bytesBefore) / 2, trainer.parallelism.rawValue)
    }
}
