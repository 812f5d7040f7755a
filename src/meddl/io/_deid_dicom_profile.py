"""The attribute table of DICOM PS3.15 Annex E (Table E.1-1), Basic Application Level Confidentiality Profile, as data.

Each entry maps a pydicom keyword to the profile's action code (Table E.1-1a):

====  ==========================================================================================
X     remove the attribute
Z     replace with a zero-length value
D     replace with a non-zero-length dummy value consistent with the VR
U     replace the UID with another, internally consistent one (the same original → the same new)
K     keep (sequences are kept and their items cleaned with the same rules)
====  ==========================================================================================

A compound code (``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``) means "the first unless the IOD requires the attribute to be
present". Without the IOD's type of every attribute at hand, :func:`resolve_action` keeps the attribute present
whenever the profile allows that it may be required: ``X/Z`` → Z, ``X/D`` / ``Z/D`` / ``X/Z/D`` → D. ``X/Z/U*``
(a sequence of references) → keep the sequence, with every UID inside it replaced.

Dates and times are not in this table: under the *Retain Longitudinal Temporal Information with Modified Dates
Option* (CID 7050 code 113107), which MedDL applies, every DA and DT value (at any depth) is shifted by the
patient's offset and times of day are kept. Patient's Birth Date is the exception: the profile empties it and no
option of it keeps it (``PatientBirthDate`` below). UIDs are handled by value representation as well: every UI
value is replaced except class and transfer-syntax UIDs (:data:`KEPT_UIDS`) and the standard's own well-known UIDs.

The table holds the attributes of the 2023 edition of Table E.1-1 that name, locate or describe a person,
organisation, device or request, and the free-text attributes; a few marked ``# MedDL`` go further than the table.
"""

from __future__ import annotations

__all__ = [
    "BASIC_PROFILE",
    "BURNED_IN_MODALITIES",
    "BURNED_IN_SOP_CLASS_PREFIXES",
    "DUMMY_TEXT",
    "KEPT_UIDS",
    "PATIENT_CHARACTERISTICS",
    "REMOVED_FILE_META",
    "resolve_action",
]

BASIC_PROFILE: dict[str, str] = {
    # patient identity and demographics
    "PatientName": "Z",
    "PatientID": "Z",  # replaced by the salted key (a consistent D), so records of one patient stay linked
    "IssuerOfPatientID": "X",
    "IssuerOfPatientIDQualifiersSequence": "X",
    "OtherPatientIDs": "X",
    "OtherPatientIDsSequence": "X",
    "OtherPatientNames": "X",
    "PatientBirthName": "X",
    "PatientMotherBirthName": "X",
    "PatientBirthDate": "Z",
    "PatientBirthTime": "X",
    "PatientBirthDateInAlternativeCalendar": "X",
    "PatientDeathDateInAlternativeCalendar": "X",
    "PatientAlternativeCalendar": "X",
    "PatientSex": "Z",
    "PatientAge": "X",
    "PatientSize": "X",
    "PatientWeight": "X",
    "PatientSexNeutered": "X/Z",
    "EthnicGroup": "X",
    "SmokingStatus": "X",
    "PregnancyStatus": "X",
    "PatientAddress": "X",
    "PatientTelephoneNumbers": "X",
    "PatientTelecomInformation": "X",
    "CountryOfResidence": "X",
    "RegionOfResidence": "X",
    "MilitaryRank": "X",
    "BranchOfService": "X",
    "Occupation": "X",
    "PatientReligiousPreference": "X",
    "MedicalRecordLocator": "X",
    "PatientInsurancePlanCodeSequence": "X",
    "InsurancePlanIdentification": "X",
    "PatientPrimaryLanguageCodeSequence": "X",
    "PatientPrimaryLanguageModifierCodeSequence": "X",
    "ResponsiblePerson": "X",
    "ResponsibleOrganization": "X",
    "ReferencedPatientSequence": "X",
    "ReferencedPatientAliasSequence": "X",
    "ReferencedPatientPhotoSequence": "X",
    # clinical free text about the patient
    "AdditionalPatientHistory": "X",
    "PatientComments": "X",
    "Allergies": "X",
    "MedicalAlerts": "X",
    "PatientState": "X",
    "SpecialNeeds": "X",
    "PreMedication": "X",
    "PatientTransportArrangements": "X",
    "PatientInstitutionResidence": "X",
    "CurrentPatientLocation": "X",
    "ConfidentialityConstraintOnPatientDataDescription": "X",
    # visit, admission and request
    "AccessionNumber": "Z",
    "IssuerOfAccessionNumberSequence": "X",
    "StudyID": "Z",
    "StudyIDIssuer": "X",
    "AdmissionID": "X",
    "IssuerOfAdmissionIDSequence": "X",
    "AdmittingDiagnosesDescription": "X",
    "AdmittingDiagnosesCodeSequence": "X",
    "DischargeDiagnosisDescription": "X",
    "ServiceEpisodeID": "X",
    "ServiceEpisodeDescription": "X",
    "IssuerOfServiceEpisodeIDSequence": "X",
    "VisitComments": "X",
    "RequestAttributesSequence": "X",
    "RequestedProcedureID": "X",
    "RequestedProcedureDescription": "X/Z",
    "RequestedProcedureComments": "X",
    "RequestedProcedureLocation": "X",
    "RequestedContrastAgent": "X",
    "ReasonForStudy": "X",
    "ReasonForTheRequestedProcedure": "X",
    "ReasonForTheImagingServiceRequest": "X",
    "ImagingServiceRequestComments": "X",
    "PlacerOrderNumberImagingServiceRequest": "Z",
    "FillerOrderNumberImagingServiceRequest": "Z",
    "OrderEnteredBy": "X",
    "OrderEntererLocation": "X",
    "OrderCallbackPhoneNumber": "X",
    "OrderCallbackTelecomInformation": "X",
    "RequestingPhysician": "X",
    "RequestingService": "X",
    "NamesOfIntendedRecipientsOfResults": "X",
    "IntendedRecipientsOfResultsIdentificationSequence": "X",
    "ScheduledProcedureStepID": "X",
    "ScheduledProcedureStepDescription": "X",
    "ScheduledProcedureStepLocation": "X",
    "ScheduledPerformingPhysicianName": "X",
    "ScheduledPerformingPhysicianIdentificationSequence": "X",
    "ScheduledHumanPerformersSequence": "X",
    "ScheduledStationAETitle": "X",
    "ScheduledStationName": "X",
    "ScheduledStationNameCodeSequence": "X",
    "ScheduledStationGeographicLocationCodeSequence": "X",
    "ScheduledStudyLocation": "X",
    "ScheduledStudyLocationAETitle": "X",
    "ScheduledPatientInstitutionResidence": "X",
    "PerformedProcedureStepID": "X",
    "PerformedProcedureStepDescription": "X",
    "CommentsOnThePerformedProcedureStep": "X",
    "PerformedLocation": "X",
    "PerformedStationAETitle": "X",
    "PerformedStationName": "X",
    "PerformedStationNameCodeSequence": "X",
    "PerformedStationGeographicLocationCodeSequence": "X",
    "ReferencedPerformedProcedureStepSequence": "X/Z/D",
    "ReferencedStudySequence": "X/Z",
    "ActualHumanPerformersSequence": "X",
    "HumanPerformerName": "X",
    "HumanPerformerOrganization": "X",
    # people: physicians, operators, observers, authors
    "ReferringPhysicianName": "Z",
    "ReferringPhysicianAddress": "X",
    "ReferringPhysicianTelephoneNumbers": "X",
    "ReferringPhysicianIdentificationSequence": "X",
    "ConsultingPhysicianName": "X",
    "ConsultingPhysicianIdentificationSequence": "X",
    "PhysiciansOfRecord": "X",
    "PhysiciansOfRecordIdentificationSequence": "X",
    "PerformingPhysicianName": "X",
    "PerformingPhysicianIdentificationSequence": "X",
    "NameOfPhysiciansReadingStudy": "X",
    "PhysiciansReadingStudyIdentificationSequence": "X",
    "OperatorsName": "X/Z/D",
    "OperatorIdentificationSequence": "X/D",
    "PersonName": "D",
    "PersonAddress": "X",
    "PersonTelephoneNumbers": "X",
    "PersonTelecomInformation": "X",
    "PersonIdentificationCodeSequence": "D",
    "VerifyingObserverName": "D",
    "VerifyingObserverIdentificationCodeSequence": "Z",
    "VerifyingOrganization": "X",
    "AuthorObserverSequence": "X",
    "ParticipantSequence": "X",
    "CustodialOrganizationSequence": "X",
    "ContentCreatorName": "Z",
    "ContentCreatorIdentificationCodeSequence": "X",
    "ReviewerName": "X/Z",
    "ROIInterpreter": "X",  # MedDL: an RT structure set's person name
    "SelectorPNValue": "X",  # MedDL: person names inside hanging protocols
    # institution and device
    "InstitutionName": "X/Z/D",
    "InstitutionAddress": "X",
    "InstitutionCodeSequence": "X/Z/D",
    "InstitutionalDepartmentName": "X",
    "InstitutionalDepartmentTypeCodeSequence": "X",
    "StationName": "X/Z/D",
    "DeviceSerialNumber": "X/Z/D",
    "DetectorID": "X",
    "GantryID": "X",
    "GeneratorID": "X",
    "PlateID": "X",
    "CassetteID": "X",
    "ModifyingDeviceID": "X",
    "ModifyingDeviceManufacturer": "X",
    "SourceSerialNumber": "X",  # MedDL: an RT source's serial number
    # descriptions and comments (free text that may name anyone)
    "StudyDescription": "X",
    "SeriesDescription": "X",
    "ProtocolName": "X/D",
    "AcquisitionComments": "X",
    "AcquisitionProtocolDescription": "X",
    "AcquisitionDeviceProcessingDescription": "X/D",
    "ContributionDescription": "X",
    "DerivationDescription": "X",
    "ImageComments": "X",
    "FrameComments": "X",
    "StudyComments": "X",
    "IdentifyingComments": "X",
    "ImagePresentationComments": "X",
    "ModifiedImageDescription": "X",
    "TextComments": "X",
    "TextString": "X",
    "Arbitrary": "X",
    "LabelText": "X",  # MedDL: free text of a label
    "UnformattedTextValue": "X",  # MedDL: free text of a graphic annotation
    "ContentSequence": "X",
    "AcquisitionContextSequence": "X",
    "GraphicAnnotationSequence": "D",
    "IconImageSequence": "X",
    "TopicTitle": "X",
    "TopicSubject": "X",
    "TopicAuthor": "X",
    "TopicKeywords": "X",
    # interpretation and results (retired report attributes)
    "InterpretationText": "X",
    "InterpretationDiagnosisDescription": "X",
    "InterpretationAuthor": "X",
    "InterpretationRecorder": "X",
    "InterpretationTranscriber": "X",
    "InterpretationApproverSequence": "X",
    "PhysicianApprovingInterpretation": "X",
    "InterpretationIDIssuer": "X",
    "Impressions": "X",
    "ResultsComments": "X",
    "ResultsIDIssuer": "X",
    "ResultsDistributionListSequence": "X",
    "DistributionName": "X",
    "DistributionAddress": "X",
    # signatures and audit trails (they hold the original values)
    "DigitalSignaturesSequence": "X",
    "DigitalSignatureUID": "X",
    "ReferencedDigitalSignatureSequence": "X",
    "ReferencedSOPInstanceMACSequence": "X",
    "MAC": "X",
    "OriginalAttributesSequence": "X",
    "ModifiedAttributesSequence": "X",
    "DataSetTrailingPadding": "X",
    # references kept with their UIDs replaced
    "ReferencedImageSequence": "X/Z/U*",
    "SourceImageSequence": "X/Z/U*",
}
"""Pydicom keyword → PS3.15 Table E.1-1 action of the Basic Profile."""

PATIENT_CHARACTERISTICS = frozenset(
    {
        "PatientSex",
        "PatientAge",
        "PatientSize",
        "PatientWeight",
        "PatientSexNeutered",
        "EthnicGroup",
        "SmokingStatus",
        "PregnancyStatus",
    }
)
"""Attributes the *Retain Patient Characteristics Option* (CID 7050 code 113108) keeps (its K entries)."""

KEPT_UIDS = frozenset(
    {
        "SOPClassUID",
        "MediaStorageSOPClassUID",
        "ReferencedSOPClassUID",
        "ReferencedSOPClassUIDInFile",
        "SOPClassesInStudy",
        "RelatedGeneralSOPClassUID",
        "OriginalSpecializedSOPClassUID",
        "AffectedSOPClassUID",
        "RequestedSOPClassUID",
        "TransferSyntaxUID",
        "ReferencedTransferSyntaxUIDInFile",
        "EncryptedContentTransferSyntaxUID",
        "MACCalculationTransferSyntaxUID",
        "ImplementationClassUID",
        "CodingSchemeUID",
        "MappingResourceUID",
        "ContextGroupExtensionCreatorUID",
        "TemplateExtensionCreatorUID",
        "TemplateExtensionOrganizationUID",
        "PrivateInformationCreatorUID",
    }
)
"""UI attributes that name a kind of object or an encoding, not an instance: kept as they are."""

REMOVED_FILE_META = (
    "SourceApplicationEntityTitle",
    "SendingApplicationEntityTitle",
    "ReceivingApplicationEntityTitle",
    "SourcePresentationAddress",
    "SendingPresentationAddress",
    "ReceivingPresentationAddress",
    "PrivateInformationCreatorUID",
    "PrivateInformation",
    "ImplementationClassUID",  # the writer's: pydicom fills in its own
    "ImplementationVersionName",
)
"""File meta information elements that name the sending site or application."""

BURNED_IN_MODALITIES = {
    "US": "ultrasound",
    "IVUS": "intravascular ultrasound",
    "OT": "other (often screen captures)",
    "SC": "secondary capture",
    "ES": "endoscopy",
    "XC": "external-camera photography",
    "GM": "general microscopy",
    "SM": "slide microscopy (slide labels)",
    "DOC": "document",
    "OP": "ophthalmic photography",
    "DG": "diaphanography",
}
"""Modalities whose pixels commonly carry burned-in patient text."""

BURNED_IN_SOP_CLASS_PREFIXES = {
    "1.2.840.10008.5.1.4.1.1.7": "secondary capture",
    "1.2.840.10008.5.1.4.1.1.104": "encapsulated document",
    "1.2.840.10008.5.1.4.1.1.77.1.1": "visible light endoscopic image",
    "1.2.840.10008.5.1.4.1.1.77.1.4": "visible light photographic image",
    "1.2.840.10008.5.1.4.1.1.6": "ultrasound image",
    "1.2.840.10008.5.1.4.1.1.3": "ultrasound multi-frame image",
}
"""SOP Class UID prefixes whose pixels (or document) commonly carry patient text."""

DUMMY_TEXT = "ANONYMIZED"

_COMPOUND = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "K"}


def resolve_action(code: str) -> str:
    """One of X, Z, D, U, K for a profile code; ``X/Z/U*`` becomes K (kept, its UIDs replaced as every UID is)."""
    return _COMPOUND.get(code, code)
