import LatentModels

/// The signal-to-noise ratio of a gradient estimator over one parameter group (Rainforth et al. 2018; MATH.md §10):
/// how large the expected gradient is against the spread of the draws. Both figures are scale-free.
public struct SignalToNoise: Codable, Sendable, Equatable {
    /// The mean over the group's coordinates of |mean_i| / sd_i (coordinates whose draws never vary are left out).
    public var meanOverCoordinates: Double
    /// ‖mean‖ / √(tr Cov): the whole group's signal against its total noise.
    public var ratioOfNorms: Double

    /// The two figures as they are.
    public init(meanOverCoordinates: Double, ratioOfNorms: Double) {
        self.meanOverCoordinates = meanOverCoordinates
        self.ratioOfNorms = ratioOfNorms
    }

    /// Whether both figures are finite numbers.
    public var isFinite: Bool { meanOverCoordinates.isFinite && ratioOfNorms.isFinite }

    enum CodingKeys: String, CodingKey {
        case meanOverCoordinates = "mean_over_coordinates"
        case ratioOfNorms = "ratio_of_norms"
    }
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
        return SignalToNoise(meanOverCoordinates: coordinates == 0 ? .nan : coordinateSum / Double(coordinates),
                             ratioOfNorms: squaredNorm.squareRoot() / traceOfCovariance(over: group).squareRoot())
    }
}
