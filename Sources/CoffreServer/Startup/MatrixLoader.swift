import CoffreDomain
import Foundation

/// Loads the habilitation matrix: the operator's file when configured, else the default
/// shipped as a resource of this module (`Resources/habilitations-default.json`).
enum MatrixLoader {
    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    static func load(path: String?) throws -> HabilitationMatrix {
        let url: URL
        if let path {
            url = URL(fileURLWithPath: path)
        } else if let bundled = Bundle.module.url(forResource: "habilitations-default", withExtension: "json") {
            url = bundled
        } else {
            throw Failed(description: "the default habilitation matrix is missing from the installation")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw Failed(description: "cannot read the habilitation matrix \(url.path): \(error.localizedDescription)")
        }
        do {
            return try HabilitationMatrix.load(json: Array(data))
        } catch {
            throw Failed(description: "habilitation matrix \(url.path): \(error.description)")
        }
    }
}
