import Foundation
import LatentCore
import LatentModels
import LatentData

/// Everything `latent train` is asked to do.
public struct TrainingOptions: Codable, Sendable {
    /// The model to train: its shape and objective.
    public var configuration = ModelConfiguration()
    /// The minibatch size B (`--batch`); with several processes, the global batch.
    public var batch = 100
    /// Adam's learning rate (`--lr`, MATH.md §3).
    public var learningRate = 1e-3
    /// The run's length in epochs (`--epochs`), unless `iterations` is set.
    public var epochs: Int? = 20
    /// The run's length in steps (`--iterations`); takes precedence over `epochs` when set.
    public var iterations: Int?
    /// The seed of every random draw: initialization, the epochs' order, binarization and the posterior's noise.
    public var seed: UInt64 = 0
    /// Worker threads for the training step and the test evaluation (`--threads`; default: every core).
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// How the threads are used (DESIGN.md § The training step); `auto` (the faster strategy for the batch size) unless
    /// asked otherwise.
    public var parallelism: Trainer.Parallelism = .auto
    /// The dataset directory with the four IDX files (`--data`).
    public var data = Dataset.defaultDirectory
    /// The run directory that options, metrics and checkpoints are written into (`--out`).
    public var out = "runs/latest"
    /// Train on the first this many training images only (`--train-limit`; nil: all).
    public var trainLimit: Int?
    /// Evaluate on the first this many test images only (`--test-limit`; nil: all).
    public var testLimit: Int?
    /// Also write a checkpoint every N steps within an epoch (0: only at the end of each epoch).
    public var checkpointEvery = 0
    /// What a non-finite loss or gradient does: stop with an error, or skip the batch and count it.
    public var onNonFinite: Trainer.NonFinitePolicy = .stop
    /// The defaults of `latent train`.
    public init() {}

    /// Decodes `options.json`; keys added later default to their original behaviour, and `epochs` or `iterations`
    /// must be there.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(ModelConfiguration.self, forKey: .configuration)
        batch = try c.decode(Int.self, forKey: .batch)
        learningRate = try c.decode(Double.self, forKey: .learningRate)
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs)
        iterations = try c.decodeIfPresent(Int.self, forKey: .iterations)
        // The run's length has no default: a file without it is damaged, not a 20-epoch run.
        guard epochs != nil || iterations != nil else {
            throw DecodingError.keyNotFound(CodingKeys.epochs, DecodingError.Context(
                codingPath: c.codingPath, debugDescription: "a run's length: epochs (or iterations)"))
        }
        seed = try c.decode(UInt64.self, forKey: .seed)
        threads = try c.decode(Int.self, forKey: .threads)
        // Options written before the key existed come from runs that split the batch.
        parallelism = try c.decodeIfPresent(Trainer.Parallelism.self, forKey: .parallelism) ?? .data
        data = try c.decode(String.self, forKey: .data)
        out = try c.decode(String.self, forKey: .out)
        trainLimit = try c.decodeIfPresent(Int.self, forKey: .trainLimit)
        testLimit = try c.decodeIfPresent(Int.self, forKey: .testLimit)
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? 0
        onNonFinite = try c.decodeIfPresent(Trainer.NonFinitePolicy.self, forKey: .onNonFinite) ?? .stop
    }

    /// The options file of the run directory `directory`, which `--resume` continues from.
    public static func path(in directory: String) -> String {
        (directory as NSString).appendingPathComponent("options.json")
    }

    /// The most epochs a run may ask for (and a thousand times as many iterations): far beyond any real run, and
    /// small enough that step counts never overflow.
    package static let lengthLimit = 1_000_000

    /// The most worker threads a run may ask for (`WorkerPool.maximumSize`): far more than any machine's cores;
    /// the strategies use no more than the batch has rows, and OpenBLAS no more than its build allows.
    public static let threadLimit = WorkerPool.maximumSize

    /// Checks the model configuration, then every option's range; the error names the setting and what it must be.
    public func validate() throws(ConfigurationError) {
        try configuration.validate()
        func fail(_ setting: String, _ requirement: String, _ value: Any) -> ConfigurationError {
            .invalid(setting: setting, requirement: requirement, value: "\(value)")
        }
        guard batch > 0 else { throw fail("batch", "must be at least 1", batch) }
        guard learningRate.isFinite, learningRate > 0 else {
            throw fail("learningRate", "must be a positive finite number", learningRate)
        }
        let limit = TrainingOptions.lengthLimit
        if let epochs, !(1...limit).contains(epochs) { throw fail("epochs", "must be between 1 and \(limit)", epochs) }
        if let iterations, !(1...(limit * 1000)).contains(iterations) {
            throw fail("iterations", "must be between 1 and \(limit * 1000)", iterations)
        }
        guard (1...TrainingOptions.threadLimit).contains(threads) else {
            throw fail("threads", "must be between 1 and \(TrainingOptions.threadLimit)", threads)
        }
        if let trainLimit, trainLimit <= 0 { throw fail("trainLimit", "must be at least 1", trainLimit) }
        if let testLimit, testLimit <= 0 { throw fail("testLimit", "must be at least 1", testLimit) }
        guard checkpointEvery >= 0 else { throw fail("checkpointEvery", "must be ≥ 0", checkpointEvery) }
    }
}

/// One line of `metrics.jsonl`: the state after an epoch (or after the last step of an `--iterations` run).
public struct EpochMetrics: Codable, Sendable {
    /// The metrics file of the run directory `directory`: one JSON object per epoch.
    public static func path(in directory: String) -> String {
        (directory as NSString).appendingPathComponent("metrics.jsonl")
    }

    /// The epoch completed, counted from 1.
    public var epoch: Int
    /// Steps taken when the epoch ended.
    public var step: Int
    /// The mean training loss over the epoch's batches: the NELBO, or −L_m for an IWAE run (MATH.md §4).
    public var trainNELBO: Double
    /// The mean one-sample NELBO on the test set after the epoch (MATH.md §7).
    public var testNELBO: Double
    /// The mean KL term on the test set.
    public var testKL: Double
    /// The mean reconstruction term −log p(x|z) on the test set.
    public var testRec: Double
    /// Wall-clock seconds of the epoch's training steps (the test evaluation excluded).
    public var seconds: Double
    /// Training examples per second over the epoch's steps.
    public var samplesPerSecond: Double
    /// Wall-clock seconds of the epoch's test evaluation.
    public var evalSeconds: Double
    /// Batches skipped as non-finite so far (`--on-nan skip-batch`).
    public var skippedBatches: Int
    /// Cholesky factorizations retried with a raised δ so far, training and evaluation (covariance posterior only).
    public var factorizationRetries: Int?
    /// Processes that trained together (`mpirun -np`; 1 without it).
    public var ranks: Int?

    enum CodingKeys: String, CodingKey {
        case epoch
        case step
        case trainNELBO = "train_nelbo"
        case testNELBO = "test_nelbo"
        case testKL = "test_kl"
        case testRec = "test_rec"
        case seconds
        case samplesPerSecond = "samples_per_second"
        case evalSeconds = "eval_seconds"
        case skippedBatches = "skipped_batches"
        case factorizationRetries = "factorization_retries"
        case ranks
    }
}
