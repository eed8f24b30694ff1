/// The patient-facing document categories of Mon espace santé, the `--class` a client gives.
///
/// Each maps to the DMP's own classCode (value set JDV_J57) where one fits, so that exports and
/// the official habilitation matrix can use the national codes.
public enum DocumentClass: String, Sendable, CaseIterable, Codable {
    case synthese = "SYNTHESE"
    case ordonnanceSoins = "ORD_SOIN"
    case radiologie = "RADIO_SC"
    case biologie = "BIOLOGIE"
    case compteRendu = "CPT_REND"
    case carnetVaccination = "CAR_VAC"
    case directivesAnticipees = "DIR_ANT"
    case certificatMedical = "CERT_MED"
    case dispensation = "DISPENS"
    case planDeSoins = "PLAN_SOIN"
    case documentAdministratif = "DOC_ADM"
    case remboursement = "REMB"
    case autreDocument = "AUTR_DOC"

    /// The JDV_J57 classCode: 10 compte rendu, 11 synthèse, 31 imagerie, 42 prescription,
    /// 43 dispensation, 44 plan de soins, 45 traitement administré (vaccinations),
    /// 52 certificat, 60 remboursement, 90 documents du patient, 95 gestion.
    public var dmpClassCode: String {
        switch self {
        case .synthese: "11"
        case .ordonnanceSoins: "42"
        case .radiologie: "31"
        case .biologie, .compteRendu: "10"
        case .carnetVaccination: "45"
        case .directivesAnticipees, .autreDocument: "90"
        case .certificatMedical: "52"
        case .dispensation: "43"
        case .planDeSoins: "44"
        case .documentAdministratif: "95"
        case .remboursement: "60"
        }
    }

    /// The list of accepted codes, for error messages.
    public static var accepted: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
