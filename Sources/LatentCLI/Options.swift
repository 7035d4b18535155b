import ArgumentParser
import Foundation
import LatentCore
import LatentData
import LatentModels
import LatentEvaluation
import LatentTraining

extension ModelKind: ExpressibleByArgument {}
extension PosteriorKind: ExpressibleByArgument {}
extension Activation: ExpressibleByArgument {}
extension PriorKind: ExpressibleByArgument {}
extension LikelihoodKind: ExpressibleByArgument {}
extension BinarizationMode: ExpressibleByArgument {}
extension PathwiseEstimator: ExpressibleByArgument {}
extension Trainer.Parallelism: ExpressibleByArgument {}
extension Trainer.NonFinitePolicy: ExpressibleByArgument {}

/// The items of a comma-separated flag value, each parsed by `parse` (surrounding spaces ignored); nil when any item
/// does not parse, an empty one included, so that a typo like `300,,300` or `300,` is an error, not a shorter list.
func commaSeparated<T>(_ argument: String, _ parse: (String) -> T?) -> [T]? {
    var items: [T] = []
    for item in argument.split(separator: ",", omittingEmptySubsequences: false) {
        guard let value = parse(item.trimmingCharacters(in: .whitespaces)) else { return nil }
        items.append(value)
    }
    return items
}

/// The first item that `items` lists more than once (nil when each is there once), for a flag's one-line error.
func firstRepeated<T: Equatable>(_ items: [T]) -> T? {
    items.enumerated().first { index, item in items[..<index].contains(item) }?.element
}

/// Runs a library check from `validate()`, so its message comes with the usage like every other flag range error.
func asValidationError(_ check: () throws -> Void) throws {
    do { try check() } catch { throw ValidationError("\(error)") }
}

/// Comma-separated integers, e.g. `300,300`.
struct IntegerList: ExpressibleByArgument {
    var values: [Int]
    init?(argument: String) {
        guard let values = commaSeparated(argument, { Int($0) }) else { return nil }
        self.values = values
    }
    init(_ values: [Int]) { self.values = values }
    var defaultValueDescription: String { values.map(String.init).joined(separator: ",") }
}

/// The long flags on this process's command line (`--lr 0.01` and `--lr=0.01` both give `--lr`): what the user
/// asked for, which ArgumentParser does not tell apart from a flag left at its default.
func givenFlags(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Set<String> {
    Set(arguments.prefix { $0 != "--" }.filter { $0.hasPrefix("--") }.map { String($0.prefix { $0 != "=" }) })
}

/// The model's shape and objective.
struct ModelOptions: ParsableArguments {
    @Option(help: "Objective: vae (ELBO, N(0, I) prior), gmvae (mixture prior), iwae (importance-weighted bound).")
    var model: ModelKind = .vae
    @Option(help: "Prior: normal or mixture (gmvae implies mixture; iwae takes either).")
    var prior: PriorKind?
    @Option(parsing: .unconditional, help: "Mixture components K of the mixture prior.")
    var components: Int = 500
    @Option(parsing: .unconditional, help: "Importance samples m per example (iwae).")
    var samples: Int?
    @Option(help: ArgumentHelp("Posterior family: diagonal, full (Cholesky factor), covariance (AAᵀ + δI, A lower "
        + "triangular, through potrf); `compare` takes --posteriors instead."))
    var posterior: PosteriorKind = .diagonal
    @Option(parsing: .unconditional, help: "Latent dimension k.")
    var latent: Int = 10
    @Option(help: "Hidden layer widths of encoder and decoder (the decoder mirrors them).")
    var hidden: IntegerList = IntegerList([300, 300])
    @Option(help: ArgumentHelp("Hidden activation: \(Activation.allCases.map(\.rawValue).joined(separator: ", "))."))
    var activation: Activation = .elu
    @Option(parsing: .unconditional, help: "δ in Σ = AAᵀ + δI for --posterior covariance.")
    var jitter: Double = 1e-3
    @Option(help: ArgumentHelp("Decoder likelihood: bernoulli (binary pixels) or gaussian (intensities in [0, 1]: "
        + "mean sigmoid(decoder output), one learned variance per pixel)."))
    var likelihood: LikelihoodKind = .bernoulli
    @Option(help: ArgumentHelp("Training inputs: dynamic (fresh binary draws every step; a fixed draw for "
        + "evaluation) or none (the images' intensities as they are, e.g. with --likelihood gaussian)."))
    var binarize: BinarizationMode = .dynamic
    @Option(help: ArgumentHelp("Training gradient (MATH.md §10): standard, stl (sticking the landing; the VAE then "
        + "trains the Monte Carlo KL form) or dreg (doubly reparameterized, --model iwae)."))
    var estimator: PathwiseEstimator = .standard

    var configuration: ModelConfiguration {
        ModelConfiguration(model: model, posterior: posterior, hidden: hidden.values, latent: latent,
                           activation: activation, samples: samples ?? (model == .iwae ? 10 : 1), jitter: jitter,
                           prior: prior, components: components, likelihood: likelihood, binarization: binarize,
                           estimator: estimator)
    }

    /// A one-line note when the estimator is biased for this objective (STL with m > 1, MATH.md §10), else nil.
    var estimatorNote: String? {
        guard estimator == .stl, configuration.samples > 1 else { return nil }
        return "note: --estimator stl is biased for the importance-weighted bound with --samples > 1 (MATH.md §10); "
            + "--estimator dreg is its unbiased form"
    }

    func validate() throws {
        try requireFinite(jitter, "--jitter")
        guard jitter >= 0 else { throw ValidationError("--jitter must be ≥ 0 (got \(jitter))") }
        guard latent > 0 else { throw ValidationError("--latent must be at least 1 (got \(latent))") }
        guard components > 0 else { throw ValidationError("--components must be at least 1 (got \(components))") }
        if let samples {
            guard samples > 0 else { throw ValidationError("--samples must be at least 1 (got \(samples))") }
            guard model == .iwae || samples == 1 else {
                throw ValidationError("--samples needs --model iwae (vae and gmvae train the one-sample ELBO)")
            }
        }
        if model == .gmvae && prior == .normal { throw ValidationError("--model gmvae uses the mixture prior") }
        if model == .vae && prior == .mixture {
            throw ValidationError("--prior mixture with --model vae is --model gmvae; use that")
        }
        guard hidden.values.allSatisfy({ $0 > 0 }) else { throw ValidationError("--hidden widths must be positive") }
        if estimator == .dreg && model != .iwae {
            throw ValidationError("--estimator dreg is for the importance-weighted bound (--model iwae); with "
                + "\(model.rawValue) use --estimator stl (DReG with one sample is STL)")
        }
    }

    /// Rejects flags that would change nothing for models with these posterior families (`train` trains one,
    /// `compare` several), as --samples without iwae is rejected, rather than dropping them silently.
    func rejectIgnoredFlags(posteriors: [PosteriorKind]) throws {
        let given = givenFlags()
        if given.contains("--components") && model != .gmvae && prior != .mixture {
            throw ValidationError("--components sets the mixture prior's size; use it with --model gmvae "
                + "(or --model iwae --prior mixture)")
        }
        if given.contains("--jitter") && !posteriors.contains(.covariance) {
            throw ValidationError("--jitter is δ of the covariance posterior (Σ = AAᵀ + δI); "
                + "\(posteriors.map(\.rawValue).joined(separator: ", ")) has none")
        }
    }
}

/// Where the data comes from.
struct DataOptions: ParsableArguments {
    @Option(help: "Directory with the four MNIST-style IDX files (plain or .gz).")
    var data: String = Dataset.defaultDirectory
}

/// Rejects a `--threads` outside 1 … `WorkerPool.maximumSize`, before any thread is started.
func validateThreads(_ threads: Int) throws {
    guard (1...WorkerPool.maximumSize).contains(threads) else {
        throw ValidationError("--threads must be between 1 and \(WorkerPool.maximumSize) (got \(threads))")
    }
}

/// Rejects NaN and infinities, which ArgumentParser's Double parsing accepts.
func requireFinite(_ value: Double, _ flag: String) throws {
    guard value.isFinite else { throw ValidationError("\(flag) must be a finite number (got \(value))") }
}

/// Named configurations that reproduce a published protocol.
enum Preset: String, ExpressibleByArgument, CaseIterable {
    /// Stanford CS236 homework: 784-300-300 ELU, k = 10, batch 100, Adam 1e-3, 20 000 iterations.
    case cs236
}

/// The flags of a training run, shared by `train` and `compare`.
struct TrainingFlags: ParsableArguments {
    @Option(help: ArgumentHelp("A named protocol: cs236 (784-300-300 ELU, k = 10, batch 100, Adam 1e-3, 20 000 "
        + "iterations); flags given beside it override its values."))
    var preset: Preset?
    @OptionGroup var model: ModelOptions
    @OptionGroup var dataOptions: DataOptions
    @Option(parsing: .unconditional, help: "Minibatch size.") var batch: Int = 100
    @Option(parsing: .unconditional, help: "Adam learning rate.") var lr: Double = 1e-3
    @Option(parsing: .unconditional, help: "Epochs (passes over the training set); default 20.") var epochs: Int?
    @Option(parsing: .unconditional, help: "Total optimization steps (instead of --epochs).") var iterations: Int?
    @Option(parsing: .unconditional, help: "Random seed (initialization, shuffling, binarization, noise).")
    var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: ArgumentHelp("Worker threads, at most \(TrainingOptions.threadLimit); the "
        + "core count by default. A step uses no more than its batch has rows (OpenBLAS's own: no more than its "
        + "build allows)."))
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: ArgumentHelp("How --threads are used: auto (tensor up to batch \(Trainer.tensorBatchLimit), data "
        + "above), data (split the batch; single-threaded BLAS per worker), tensor (split every layer's outputs) or "
        + "blas (OpenBLAS threads). The results depend on --threads and this choice, never on timing."))
    var parallelism: Trainer.Parallelism = .auto
    @Option(help: "Output directory.") var out: String = "runs/latest"
    @Option(parsing: .unconditional,
            help: "Also checkpoint every N steps within an epoch (0: at the end of each epoch only).")
    var checkpointEvery: Int = 0
    @Option(name: .customLong("on-nan"), help: "On a non-finite loss or gradient: stop (keep the last good checkpoint) or skip-batch.")
    var onNaN: Trainer.NonFinitePolicy = .stop
    @Option(parsing: .unconditional, help: "Use only the first N training images.") var trainLimit: Int?
    @Option(parsing: .unconditional, help: "Use only the first N test images for the per-epoch evaluation.")
    var testLimit: Int?

    /// A one-line warning when more workers than cores are asked for: each step waits for its slowest worker, so
    /// workers that share a core make training slower, not faster (nil when the count fits).
    static func oversubscriptionWarning(threads: Int,
                                        cores: Int = ProcessInfo.processInfo.activeProcessorCount) -> String? {
        guard threads > cores else { return nil }
        return "warning: --threads \(threads) is more than the \(cores) core(s) here: workers will share cores and "
            + "every step waits for the slowest; --threads \(cores) trains faster"
    }

    func validate() throws {
        try requireFinite(lr, "--lr")
        guard lr > 0 else { throw ValidationError("--lr must be positive (got \(lr))") }
        guard batch > 0 else { throw ValidationError("--batch must be at least 1 (got \(batch))") }
        // --threads is checked with the other options (`TrainingOptions.validate`): one line, before any thread starts.
        if epochs != nil && iterations != nil {
            throw ValidationError("give either --epochs or --iterations, not both")
        }
        if let epochs, epochs <= 0 { throw ValidationError("--epochs must be at least 1 (got \(epochs))") }
        if let iterations, iterations <= 0 { throw ValidationError("--iterations must be at least 1 (got \(iterations))") }
        if let trainLimit, trainLimit <= 0 { throw ValidationError("--train-limit must be at least 1 (got \(trainLimit))") }
        if let testLimit, testLimit <= 0 { throw ValidationError("--test-limit must be at least 1 (got \(testLimit))") }
        guard checkpointEvery >= 0 else { throw ValidationError("--checkpoint-every must be ≥ 0 (got \(checkpointEvery))") }
    }

    var options: TrainingOptions {
        var options = TrainingOptions()
        options.configuration = model.configuration
        options.batch = batch
        options.learningRate = lr
        options.epochs = iterations == nil ? (epochs ?? 20) : nil
        options.iterations = iterations
        if preset == .cs236 {
            // The protocol's values, unless a flag asks for another (as `eval --preset cs236 --iw …` does).
            let given = givenFlags()
            if !given.contains("--hidden") { options.configuration.hidden = [300, 300] }
            if !given.contains("--latent") { options.configuration.latent = 10 }
            if !given.contains("--activation") { options.configuration.activation = .elu }
            if !given.contains("--batch") { options.batch = 100 }
            if !given.contains("--lr") { options.learningRate = 1e-3 }
            if epochs == nil {
                options.iterations = iterations ?? 20_000
                options.epochs = nil
            }
        }
        options.seed = seed
        options.threads = threads
        options.parallelism = parallelism
        options.checkpointEvery = checkpointEvery
        options.onNonFinite = onNaN
        // Absolute, so that `--resume`, `eval` and `report` find the data from any working directory.
        options.data = URL(fileURLWithPath: dataOptions.data).standardizedFileURL.path
        options.out = out
        options.trainLimit = trainLimit
        options.testLimit = testLimit
        return options
    }
}
