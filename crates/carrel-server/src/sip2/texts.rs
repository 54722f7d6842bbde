//! Screen messages (`AF`) in the patron's language: English, or French when the
//! SIP2 language field says French (`002`, `011`).

use carrel_sip2::Language;
use carrel_store::Refusal;

/// The languages Carrel has texts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    /// French for French and Canadian French, English otherwise.
    pub fn of(language: &Language) -> Self {
        match language.primary_language() {
            Some("fr") => Lang::Fr,
            _ => Lang::En,
        }
    }

    fn pick(self, en: &str, fr: &str) -> String {
        match self {
            Lang::En => en.to_owned(),
            Lang::Fr => fr.to_owned(),
        }
    }

    /// Unknown card, wrong, empty or locked PIN, no PIN set: one text for all.
    pub fn invalid_patron(self) -> String {
        self.pick("Card or PIN not recognised.", "Carte ou NIP non reconnu.")
    }

    pub fn unknown_item(self) -> String {
        self.pick("Item not found.", "Document introuvable.")
    }

    pub fn system_error(self) -> String {
        self.pick(
            "The system cannot do this now. Please see staff.",
            "Le système ne peut pas le faire maintenant. Adressez-vous au personnel.",
        )
    }

    pub fn unsupported(self) -> String {
        self.pick(
            "Not available at this machine. Please see staff.",
            "Non disponible sur cette borne. Adressez-vous au personnel.",
        )
    }

    /// A circulation refusal; `owed` is the patron's balance (for `PatronBlocked`).
    pub fn refusal(self, refusal: Refusal, owed: Option<&str>) -> String {
        match refusal {
            Refusal::CopyUnavailable => self.pick(
                "This item cannot be borrowed now.",
                "Ce document ne peut pas être emprunté pour l'instant.",
            ),
            Refusal::LoanLimitReached => self.pick(
                "You have reached your loan limit.",
                "Vous avez atteint votre limite de prêts.",
            ),
            Refusal::LoanTypeLimitReached => self.pick(
                "You have reached your loan limit for this kind of item.",
                "Vous avez atteint votre limite de prêts pour ce type de document.",
            ),
            Refusal::PatronBlocked => match owed {
                Some(owed) => match self {
                    Lang::En => {
                        format!("Your account is blocked: you owe {owed}. Please see staff.")
                    }
                    Lang::Fr => format!(
                        "Votre compte est bloqué : vous devez {owed}. Adressez-vous au personnel."
                    ),
                },
                None => self.pick(
                    "Your account is blocked by unpaid fines. Please see staff.",
                    "Votre compte est bloqué par des amendes impayées. Adressez-vous au personnel.",
                ),
            },
            Refusal::PatronInactive => self.pick(
                "Your account is not active. Please see staff.",
                "Votre compte n'est pas actif. Adressez-vous au personnel.",
            ),
            Refusal::RenewalLimitReached => self.pick(
                "This item cannot be renewed again.",
                "Ce document ne peut plus être renouvelé.",
            ),
            Refusal::HoldPending => self.pick(
                "Another patron is waiting for this item.",
                "Un autre usager attend ce document.",
            ),
            Refusal::NotOnLoan => self.pick(
                "This item is not on loan.",
                "Ce document n'est pas en prêt.",
            ),
            Refusal::FineSettled => {
                self.pick("This fee is already paid.", "Ces frais sont déjà réglés.")
            }
            Refusal::ExceedsBalance => self.pick(
                "The amount is more than what is owed.",
                "Le montant dépasse la somme due.",
            ),
            Refusal::HoldExists
            | Refusal::HoldLimitReached
            | Refusal::HoldsNotAllowed
            | Refusal::OwnFine
            | Refusal::AlreadyBorrowed
            | Refusal::HoldClosed
            | Refusal::HoldNotWaiting
            | Refusal::NotInTransit
            | Refusal::IdempotencyKeyReused => self.pick(
                "Request refused. Please see staff.",
                "Demande refusée. Adressez-vous au personnel.",
            ),
        }
    }

    pub fn checked_out(self, due: &str) -> String {
        match self {
            Lang::En => format!("Checked out. Due {due}."),
            Lang::Fr => format!("Prêt enregistré. À rendre le {due}."),
        }
    }

    pub fn renewed(self, due: &str) -> String {
        match self {
            Lang::En => format!("Renewed. Due {due}."),
            Lang::Fr => format!("Renouvelé. À rendre le {due}."),
        }
    }

    pub fn checked_in(self) -> String {
        self.pick("Checked in. Thank you.", "Retour enregistré. Merci.")
    }

    pub fn hold_shelf(self) -> String {
        self.pick(
            "This item is on hold for another patron.",
            "Ce document est réservé pour un autre usager.",
        )
    }

    pub fn transit_for_hold(self) -> String {
        self.pick(
            "This item is on hold at another branch: send it there.",
            "Ce document est réservé dans une autre bibliothèque : envoyez-le-lui.",
        )
    }

    pub fn transit_home(self) -> String {
        self.pick(
            "This item belongs to another branch: send it home.",
            "Ce document appartient à une autre bibliothèque : renvoyez-le-lui.",
        )
    }

    pub fn fine_charged(self, amount: &str) -> String {
        match self {
            Lang::En => format!("A late fee of {amount} was charged."),
            Lang::Fr => format!("Des frais de retard de {amount} ont été facturés."),
        }
    }

    pub fn payment_received(self, amount: &str) -> String {
        match self {
            Lang::En => format!("Payment of {amount} received."),
            Lang::Fr => format!("Paiement de {amount} reçu."),
        }
    }

    pub fn fee_not_found(self) -> String {
        self.pick("Fee not found.", "Frais introuvables.")
    }

    pub fn fee_ambiguous(self) -> String {
        self.pick(
            "Several fees are open: choose one.",
            "Plusieurs frais sont dus : choisissez-en un.",
        )
    }

    pub fn bad_amount(self) -> String {
        self.pick("Invalid amount or currency.", "Montant ou devise invalide.")
    }

    pub fn session_ended(self) -> String {
        self.pick("Goodbye.", "Au revoir.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_choice() {
        assert_eq!(Lang::of(&Language::French), Lang::Fr);
        assert_eq!(Lang::of(&Language::CanadianFrench), Lang::Fr);
        assert_eq!(Lang::of(&Language::English), Lang::En);
        assert_eq!(Lang::of(&Language::Unknown), Lang::En);
        assert_eq!(Lang::of(&Language::German), Lang::En);
        assert!(
            Lang::Fr
                .refusal(Refusal::PatronBlocked, Some("USD 12.00"))
                .contains("USD 12.00")
        );
    }
}
