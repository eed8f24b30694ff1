import Foundation

/// Which document classes (and types) each profession may read: the DMP's habilitation matrix,
/// as data.
///
/// Rows name a profession code (RPPS nomenclature) and optionally a specialty; the most specific
/// row wins. A row lists the patient-facing classes it may read (`*` for all). Per-type
/// overrides then allow or deny one type code (LOINC or TRE_A05) for a profession, whatever the
/// class says, because the official matrix (arrêté of 26 October 2023) decides by document
/// type. Every decision records the matrix `version` that made it.
public struct HabilitationMatrix: Codable, Sendable, Equatable {
    /// Identifies this matrix in every access decision and trace entry.
    public var version: String
    /// What this matrix is and where it comes from.
    public var description: String?
    public var rows: [Row]
    public var typeOverrides: [TypeOverride]

    /// One profession (and specialty) and the classes it may read.
    public struct Row: Codable, Sendable, Equatable {
        public var profession: String
        public var specialty: String?
        /// Class codes, or `["*"]` for every class.
        public var classes: [String]

        public init(profession: String, specialty: String? = nil, classes: [String]) {
            self.profession = profession
            self.specialty = specialty
            self.classes = classes
        }
    }

    /// An exception for one document type.
    public struct TypeOverride: Codable, Sendable, Equatable {
        public var profession: String
        public var specialty: String?
        public var typeCode: String
        public var allow: Bool

        public init(profession: String, specialty: String? = nil, typeCode: String, allow: Bool) {
            self.profession = profession
            self.specialty = specialty
            self.typeCode = typeCode
            self.allow = allow
        }
    }

    public init(version: String, description: String? = nil, rows: [Row], typeOverrides: [TypeOverride] = []) {
        self.version = version
        self.description = description
        self.rows = rows
        self.typeOverrides = typeOverrides
    }

    enum CodingKeys: String, CodingKey { case version, description, rows, typeOverrides }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        version = try container.decode(String.self, forKey: .version)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        rows = try container.decode([Row].self, forKey: .rows)
        typeOverrides = try container.decodeIfPresent([TypeOverride].self, forKey: .typeOverrides) ?? []
    }

    /// A problem that makes a matrix file unusable.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Parses and checks a matrix file: a version, known profession codes and classes, no
    /// duplicate rows.
    public static func load(json: [UInt8]) throws(Invalid) -> HabilitationMatrix {
        let matrix: HabilitationMatrix
        do {
            matrix = try JSONDecoder().decode(HabilitationMatrix.self, from: Data(json))
        } catch {
            throw Invalid(description: "not a habilitation matrix: \(error)")
        }
        try matrix.validate()
        return matrix
    }

    func validate() throws(Invalid) {
        guard !version.isEmpty, version.count <= 64 else { throw Invalid(description: "the matrix needs a version of 1 to 64 characters") }
        var seen = Set<String>()
        for row in rows {
            guard Profession(row.profession) != nil else { throw Invalid(description: "unknown profession code \(row.profession)") }
            let key = row.profession + "/" + (row.specialty ?? "")
            guard seen.insert(key).inserted else { throw Invalid(description: "two rows for \(key)") }
            for code in row.classes where code != "*" && DocumentClass(rawValue: code) == nil {
                throw Invalid(description: "unknown class \(code) for profession \(row.profession)")
            }
        }
        for override in typeOverrides where Profession(override.profession) == nil || override.typeCode.isEmpty {
            throw Invalid(description: "invalid type override for profession \(override.profession)")
        }
    }

    /// Whether `profession` (with `specialty`) may read a document of `documentClass` and
    /// `typeCode`, and the rule that says so.
    public func permits(
        profession: Profession, specialty: String?, documentClass: DocumentClass, typeCode: String?
    ) -> (allowed: Bool, rule: String) {
        if let typeCode {
            let overrides = typeOverrides.filter { $0.profession == profession.code && $0.typeCode == typeCode }
            if let match = overrides.first(where: { $0.specialty != nil && $0.specialty == specialty })
                ?? overrides.first(where: { $0.specialty == nil })
            {
                return (match.allow, match.allow ? "matrix.type-allowed" : "matrix.type-denied")
            }
        }
        let candidates = rows.filter { $0.profession == profession.code }
        guard
            let row = candidates.first(where: { $0.specialty != nil && $0.specialty == specialty })
                ?? candidates.first(where: { $0.specialty == nil })
        else {
            return (false, "matrix.profession-not-listed")
        }
        let allowed = row.classes.contains("*") || row.classes.contains(documentClass.rawValue)
        return (allowed, allowed ? "matrix.class-allowed" : "matrix.class-denied")
    }
}
