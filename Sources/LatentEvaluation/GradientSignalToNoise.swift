import LatentModels

/// The signal-to-noise ratio of a gradient estimator over one parameter group (Rainforth et al. 2018; MATH.md §10):
/// how large the expected gradient is against the spread of the draws. Both figures are scale-free.
public struct SignalToNoise: Codable, Sendable, Equatable {
    /// The mean over the group's coordinates of |mean_i| / sd_i (coordinates whose draws never vary are left out).
    public var mean_over_coordinates: Double
    /// ‖mean‖ / √(tr Cov): the whole group's signal against its total noise.
    public var ratio_of_norms: Double

    public init(mean_over_coordinates: Double, ratio_of_norms: Double) {
        self.mean_over_coordinates = mean_over_coordinates
        self.ratio_of_norms = ratio_of_norms
    }

    public var isFinite: Bool { mean_over_coordinates.isFinite && ratio_of_norms.isFinite }
}

extension GradientMoments {
    /// The signal-to-noise ratio of the draws over `group`, from their sample means and variances.
    package func signalToNoise(over group: ParameterGroup) -> SignalToNoise {
        var coordinateSum = 0.0, coordinates = 0, squaredNorm = 0.0
        for range in group.ranges {
            for i in range {
                squaredNorm += mean[i] * mean[i]
                let variance = variance(at: i)
                guard variance > 0 else { continue }
                coordinateSum += abs(mean[i]) / variance.squareRoot()
                coordinates += 1
            }
        }
        return SignalToNoise(mean_over_coordinates: coordinates == 0 ? .nan : coordinateSum / Double(coordinates),
                             ratio_of_norms: squaredNorm.squareRoot() / traceOfCovariance(over: group).squareRoot())
    }
}
