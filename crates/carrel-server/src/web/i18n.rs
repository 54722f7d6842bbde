//! The message catalog of the web pages: every text in English and French,
//! and dates, times and money formatted for the language.
//!
//! A typed catalog rather than Fluent files: each message is a field of
//! [`Texts`], declared once with all its translations side by side by
//! [`catalog!`]. A message missing in one language, or a template naming a
//! message that does not exist, fails the build (askama type-checks the
//! templates), where Fluent would find it at run time. The pages need no
//! plural rules beyond "one/other", which [`Lang::count`] covers, so Fluent's
//! runtime and its crates bring nothing the pages use.

use carrel_store::Refusal;
use time::{Date, OffsetDateTime};

use crate::http::error::ErrorCode;

/// A language the pages are translated into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// The BCP 47 tag (`lang` attribute, cookie value).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// The language's name in itself (the switch shows it).
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Fr => "Français",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The best language of an `Accept-Language` header (highest q first, the
    /// header's order among equals); English when none is supported.
    pub fn negotiate(header: &str) -> Lang {
        let mut best: Option<(u16, Lang)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            // q in thousandths; 0 means "not this one".
            let q = (q.clamp(0.0, 1.0) * 1000.0) as u16;
            if q == 0 {
                continue;
            }
            if let Some(lang) = Lang::from_code(tag)
                && best.is_none_or(|(b, _)| q > b)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::Fr => &FR,
        }
    }

    /// `message` with `{}` replaced by `value`.
    pub fn fill(message: &str, value: impl std::fmt::Display) -> String {
        message.replacen("{}", &value.to_string(), 1)
    }

    /// A day, e.g. "December 28, 2026" / "28 décembre 2026".
    pub fn date(self, day: Date) -> String {
        let month = day.month() as usize - 1;
        match self {
            Lang::En => format!("{} {}, {}", EN_MONTHS[month], day.day(), day.year()),
            Lang::Fr => format!("{} {} {}", day.day(), FR_MONTHS[month], day.year()),
        }
    }

    /// An instant as a day and time in `zone`, e.g. "December 28, 2026, 3:05 PM"
    /// / "28 décembre 2026 à 15:05".
    pub fn date_time(self, zone: &carrel_core::calendar::Zone, at: OffsetDateTime) -> String {
        let day = self.date(zone.local_date(at));
        let time = zone.local_time(at);
        match self {
            Lang::En => {
                let (hour, suffix) = match time.hour() {
                    0 => (12, "AM"),
                    h @ 1..=11 => (h, "AM"),
                    12 => (12, "PM"),
                    h => (h - 12, "PM"),
                };
                format!("{day}, {hour}:{:02} {suffix}", time.minute())
            }
            Lang::Fr => format!("{day} à {:02}:{:02}", time.hour(), time.minute()),
        }
    }

    /// An amount of money in the library's currency, e.g. "€1.50" / "1,50 €".
    pub fn money(self, cents: i64, currency: &str) -> String {
        let sign = if cents < 0 { "-" } else { "" };
        let (units, rest) = (cents.unsigned_abs() / 100, cents.unsigned_abs() % 100);
        let symbol = match currency.to_ascii_uppercase().as_str() {
            "EUR" => "€".to_owned(),
            "USD" => "$".to_owned(),
            "GBP" => "£".to_owned(),
            "CHF" => "CHF".to_owned(),
            "CAD" => "$ CA".to_owned(),
            other => other.to_owned(),
        };
        match self {
            Lang::En if symbol.chars().count() == 1 => format!("{sign}{symbol}{units}.{rest:02}"),
            Lang::En => format!("{sign}{symbol} {units}.{rest:02}"),
            Lang::Fr => format!("{sign}{units},{rest:02}\u{a0}{symbol}"),
        }
    }

    /// "1 copy" / "3 copies", by the language's plural rule (French counts 0
    /// and 1 as singular).
    pub fn count(self, n: i64, one: &str, other: &str) -> String {
        let singular = match self {
            Lang::En => n == 1,
            Lang::Fr => n == 0 || n == 1,
        };
        format!("{n} {}", if singular { one } else { other })
    }

    /// Why a circulation rule refused, in this language.
    pub fn refusal(self, refusal: &Refusal) -> &'static str {
        let t = self.texts();
        match refusal {
            Refusal::CopyUnavailable => t.refused_copy_unavailable,
            Refusal::LoanLimitReached => t.refused_loan_limit,
            Refusal::LoanTypeLimitReached => t.refused_loan_type_limit,
            Refusal::PatronBlocked => t.refused_patron_blocked,
            Refusal::PatronInactive => t.refused_patron_inactive,
            Refusal::RenewalLimitReached => t.refused_renewal_limit,
            Refusal::HoldPending => t.refused_hold_pending,
            Refusal::HoldExists => t.refused_hold_exists,
            Refusal::HoldLimitReached => t.refused_hold_limit,
            Refusal::HoldsNotAllowed => t.refused_holds_not_allowed,
            Refusal::AlreadyBorrowed => t.refused_already_borrowed,
            Refusal::NotOnLoan => t.refused_not_on_loan,
            Refusal::HoldClosed => t.refused_hold_closed,
            Refusal::HoldNotWaiting => t.refused_hold_not_waiting,
            Refusal::NotInTransit => t.refused_not_in_transit,
            Refusal::FineSettled => t.refused_fine_settled,
            Refusal::ExceedsBalance => t.refused_exceeds_balance,
            Refusal::OwnFine => t.refused_own_fine,
            Refusal::IdempotencyKeyReused => t.error_generic,
        }
    }

    /// What an API error code means for the person at the page.
    pub fn error(self, code: ErrorCode) -> &'static str {
        let t = self.texts();
        match code {
            ErrorCode::ValidationError | ErrorCode::PasswordPolicy => t.error_invalid,
            ErrorCode::InvalidCredentials => t.error_credentials,
            ErrorCode::EmailNotVerified => t.error_email_not_verified,
            ErrorCode::Unauthorized => t.error_sign_in,
            ErrorCode::Forbidden => t.error_forbidden,
            ErrorCode::CsrfFailed => t.error_csrf,
            ErrorCode::ResourceNotFound => t.error_not_found,
            ErrorCode::RateLimitExceeded => t.error_rate_limited,
            ErrorCode::CopyUnavailable => t.refused_copy_unavailable,
            ErrorCode::LoanLimitReached => t.refused_loan_limit,
            ErrorCode::PatronBlocked => t.refused_patron_blocked,
            ErrorCode::RenewalLimitReached => t.refused_renewal_limit,
            ErrorCode::HoldPending => t.refused_hold_pending,
            ErrorCode::HoldExists => t.refused_hold_exists,
            ErrorCode::HoldLimitReached => t.refused_hold_limit,
            ErrorCode::HoldsNotAllowed => t.refused_holds_not_allowed,
            ErrorCode::ServiceUnavailable => t.error_unavailable,
            _ => t.error_generic,
        }
    }
}

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const FR_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// Declares [`Texts`] and one static per language; every message must be
/// given in every language (else the macro does not match: a build error).
macro_rules! catalog {
    ($($key:ident => en: $en:expr, fr: $fr:expr;)*) => {
        /// Every text of the web pages in one language.
        #[derive(Debug)]
        pub struct Texts {
            $(pub $key: &'static str,)*
        }
        pub static EN: Texts = Texts { $($key: $en,)* };
        pub static FR: Texts = Texts { $($key: $fr,)* };
    };
}

catalog! {
    site_name => en: "Carrel library", fr: "Bibliothèque Carrel";
    skip_to_content => en: "Skip to content", fr: "Aller au contenu";
    nav_label => en: "Main", fr: "Principal";
    nav_catalog => en: "Catalog", fr: "Catalogue";
    nav_account => en: "My account", fr: "Mon compte";
    nav_desk => en: "Desk", fr: "Banque de prêt";
    nav_login => en: "Sign in", fr: "Se connecter";
    nav_register => en: "Create an account", fr: "Créer un compte";
    nav_logout => en: "Sign out", fr: "Se déconnecter";
    signed_in_as => en: "Signed in as {}", fr: "Connecté en tant que {}";
    language => en: "Language", fr: "Langue";
    change_language => en: "Change", fr: "Changer";
    footer => en: "Carrel: the library's catalog and your account.", fr: "Carrel : le catalogue de la bibliothèque et votre compte.";

    search_title => en: "Search the catalog", fr: "Rechercher dans le catalogue";
    search_label => en: "Title, author, subject or words", fr: "Titre, auteur, sujet ou mots";
    search_button => en: "Search", fr: "Rechercher";
    filters => en: "Filters", fr: "Filtres";
    filter_author => en: "Author", fr: "Auteur";
    filter_subject => en: "Subject", fr: "Sujet";
    filter_type => en: "Item type", fr: "Type de document";
    filter_any_type => en: "Any type", fr: "Tous les types";
    filter_year_from => en: "Published from (year)", fr: "Publié à partir de (année)";
    filter_year_to => en: "Published until (year)", fr: "Publié jusqu'en (année)";
    filter_available => en: "Only items on the shelf now", fr: "Seulement les documents disponibles";
    results => en: "Results", fr: "Résultats";
    no_results => en: "Nothing matches this search.", fr: "Aucun document ne correspond à cette recherche.";
    next_page => en: "Next page", fr: "Page suivante";
    first_page => en: "First page", fr: "Première page";
    by_authors => en: "by {}", fr: "de {}";
    copy_one => en: "copy", fr: "exemplaire";
    copy_other => en: "copies", fr: "exemplaires";
    available_of => en: "{} available", fr: "{} disponible(s)";

    item_details => en: "Details", fr: "Détails";
    item_authors => en: "Authors", fr: "Auteurs";
    item_publisher => en: "Publisher", fr: "Éditeur";
    item_year => en: "Year", fr: "Année";
    item_isbn => en: "ISBN", fr: "ISBN";
    item_subjects => en: "Subjects", fr: "Sujets";
    item_type => en: "Type", fr: "Type";
    item_language => en: "Language", fr: "Langue";
    availability => en: "Availability", fr: "Disponibilité";
    branch => en: "Branch", fr: "Bibliothèque";
    copies => en: "Copies", fr: "Exemplaires";
    on_shelf => en: "On the shelf", fr: "En rayon";
    no_copies => en: "The library has no copy of this item.", fr: "La bibliothèque n'a aucun exemplaire de ce document.";
    place_hold => en: "Place a hold", fr: "Réserver";
    hold_sign_in => en: "Sign in to place a hold.", fr: "Connectez-vous pour réserver.";
    hold_placed => en: "Your hold is placed.", fr: "Votre réservation est enregistrée.";
    hold_ready_now => en: "A copy is waiting for you on the hold shelf.", fr: "Un exemplaire vous attend au guichet des réservations.";

    login_title => en: "Sign in", fr: "Connexion";
    username_or_email => en: "Username or email address", fr: "Nom d'utilisateur ou adresse électronique";
    password => en: "Password", fr: "Mot de passe";
    sign_in => en: "Sign in", fr: "Se connecter";
    forgot_link => en: "Forgot your password?", fr: "Mot de passe oublié ?";
    mfa_title => en: "Two-step verification", fr: "Vérification en deux étapes";
    mfa_intro => en: "Enter the 6-digit code from your authenticator app, or one of your recovery codes.", fr: "Saisissez le code à 6 chiffres de votre application d'authentification, ou l'un de vos codes de secours.";
    mfa_code => en: "Code", fr: "Code";
    mfa_use_recovery => en: "This is a recovery code", fr: "C'est un code de secours";
    verify => en: "Verify", fr: "Vérifier";
    signed_out => en: "You are signed out.", fr: "Vous êtes déconnecté.";

    register_title => en: "Create an account", fr: "Créer un compte";
    email => en: "Email address", fr: "Adresse électronique";
    username => en: "Username", fr: "Nom d'utilisateur";
    full_name => en: "Full name (optional)", fr: "Nom complet (facultatif)";
    new_password => en: "New password", fr: "Nouveau mot de passe";
    password_hint => en: "At least 12 characters; a passphrase is best.", fr: "Au moins 12 caractères ; une phrase de passe est idéale.";
    register_button => en: "Create the account", fr: "Créer le compte";
    register_done => en: "If the details can be used, a verification email is on its way. Follow its link to activate the account.", fr: "Si ces informations peuvent être utilisées, un courriel de vérification est en route. Suivez son lien pour activer le compte.";
    verify_title => en: "Confirm your email address", fr: "Confirmez votre adresse électronique";
    verify_button => en: "Confirm my address", fr: "Confirmer mon adresse";
    verify_done => en: "Your email address is confirmed. You can sign in.", fr: "Votre adresse électronique est confirmée. Vous pouvez vous connecter.";
    forgot_title => en: "Forgot your password", fr: "Mot de passe oublié";
    forgot_intro => en: "Enter your email address: if an account uses it, we send a link to choose a new password.", fr: "Saisissez votre adresse électronique : si un compte l'utilise, nous envoyons un lien pour choisir un nouveau mot de passe.";
    forgot_button => en: "Send the link", fr: "Envoyer le lien";
    forgot_done => en: "If an account uses this address, a reset link is on its way.", fr: "Si un compte utilise cette adresse, un lien de réinitialisation est en route.";
    reset_title => en: "Choose a new password", fr: "Choisir un nouveau mot de passe";
    reset_button => en: "Set the password", fr: "Enregistrer le mot de passe";
    reset_done => en: "Your password is changed and every session has ended. Sign in with the new password.", fr: "Votre mot de passe est modifié et toutes les sessions sont fermées. Connectez-vous avec le nouveau mot de passe.";

    account_title => en: "My account", fr: "Mon compte";
    loans => en: "Loans", fr: "Prêts";
    no_loans => en: "You have nothing on loan.", fr: "Vous n'avez aucun prêt en cours.";
    title => en: "Title", fr: "Titre";
    due => en: "Due", fr: "Retour prévu";
    status => en: "Status", fr: "État";
    renewals => en: "Renewals", fr: "Prolongations";
    actions => en: "Actions", fr: "Actions";
    renew => en: "Renew", fr: "Prolonger";
    renew_label => en: "Renew {}", fr: "Prolonger {}";
    renewed => en: "Renewed: now due {}.", fr: "Prolongé : retour prévu le {}.";
    status_active => en: "On loan", fr: "En prêt";
    status_overdue => en: "Overdue", fr: "En retard";
    holds => en: "Holds", fr: "Réservations";
    no_holds => en: "You have no holds.", fr: "Vous n'avez aucune réservation.";
    pickup => en: "Pick up at", fr: "Retrait à";
    hold_waiting => en: "Waiting (number {} in line)", fr: "En attente (rang {})";
    hold_ready => en: "Ready until {}", fr: "Disponible jusqu'au {}";
    cancel_hold => en: "Cancel", fr: "Annuler";
    cancel_hold_label => en: "Cancel the hold on {}", fr: "Annuler la réservation de {}";
    pickup_default => en: "My home branch", fr: "Ma bibliothèque de rattachement";
    fines => en: "Fines", fr: "Amendes";
    no_fines => en: "You owe nothing.", fr: "Vous ne devez rien.";
    fine_date => en: "Charged on", fr: "Facturée le";
    fine_reason => en: "Reason", fr: "Motif";
    fine_amount => en: "Amount", fr: "Montant";
    fine_balance => en: "Still owed", fr: "Reste dû";
    fine_total => en: "Total owed: {}", fr: "Total dû : {}";
    fine_overdue => en: "Returned late", fr: "Retour en retard";
    fine_lost => en: "Lost item", fr: "Document perdu";
    fine_damage => en: "Damaged item", fr: "Document abîmé";
    fine_manual => en: "Charge", fr: "Frais";
    hold_cancelled => en: "The hold is cancelled.", fr: "La réservation est annulée.";

    sessions => en: "Signed-in devices", fr: "Appareils connectés";
    session_device => en: "Device", fr: "Appareil";
    session_address => en: "Address", fr: "Adresse";
    session_last_used => en: "Last used", fr: "Dernière utilisation";
    session_this_device => en: "This device", fr: "Cet appareil";
    session_unknown_device => en: "Unknown device", fr: "Appareil inconnu";
    session_revoke => en: "Sign out", fr: "Déconnecter";
    sign_out_everywhere => en: "Sign out everywhere (every device, this one too)", fr: "Se déconnecter partout (tous les appareils, celui-ci aussi)";
    session_revoke_label => en: "Sign out the device last used {}", fr: "Déconnecter l'appareil utilisé le {}";
    session_revoked => en: "That device is signed out.", fr: "Cet appareil est déconnecté.";
    settings => en: "Settings", fr: "Paramètres";
    pin_heading => en: "PIN for self-check machines", fr: "Code PIN pour les automates de prêt";
    pin_help => en: "4 to 12 digits. Enter your password to confirm.", fr: "4 à 12 chiffres. Saisissez votre mot de passe pour confirmer.";
    pin_new => en: "New PIN", fr: "Nouveau code PIN";
    current_password => en: "Current password", fr: "Mot de passe actuel";
    pin_save => en: "Set the PIN", fr: "Enregistrer le code PIN";
    pin_saved => en: "Your PIN is set.", fr: "Votre code PIN est enregistré.";
    history_heading => en: "Loan history", fr: "Historique des prêts";
    history_keep => en: "Keep a list of the items I have returned", fr: "Conserver la liste des documents que j'ai rendus";
    history_save => en: "Save", fr: "Enregistrer";
    history_on => en: "Your loan history is kept.", fr: "Votre historique des prêts est conservé.";
    history_off => en: "Your loan history is no longer kept.", fr: "Votre historique des prêts n'est plus conservé.";
    export_heading => en: "Your data", fr: "Vos données";
    export_link => en: "Download everything stored about you (JSON)", fr: "Télécharger toutes vos données enregistrées (JSON)";
    mfa_is_on => en: "Two-step verification is on: signing in asks for a code from your authenticator app.", fr: "La vérification en deux étapes est activée : la connexion demande un code de votre application d'authentification.";
    mfa_is_off => en: "Two-step verification is off. Turn it on to protect your account with a code from an authenticator app.", fr: "La vérification en deux étapes est désactivée. Activez-la pour protéger votre compte par un code d'une application d'authentification.";
    mfa_manage => en: "Manage two-step verification", fr: "Gérer la vérification en deux étapes";
    mfa_start => en: "Turn on two-step verification", fr: "Activer la vérification en deux étapes";
    mfa_scan => en: "Scan this code with your authenticator app, or type the key below into it. Then enter the 6-digit code it shows.", fr: "Scannez ce code avec votre application d'authentification, ou saisissez-y la clé ci-dessous. Puis entrez le code à 6 chiffres affiché.";
    mfa_qr_label => en: "QR code for your authenticator app", fr: "Code QR pour votre application d'authentification";
    mfa_key => en: "Key", fr: "Clé";
    mfa_confirm => en: "Confirm", fr: "Confirmer";
    mfa_enabled_notice => en: "Two-step verification is on. Keep these recovery codes somewhere safe: each signs you in once if you lose your device. They are shown only now.", fr: "La vérification en deux étapes est activée. Conservez ces codes de secours en lieu sûr : chacun permet une connexion si vous perdez votre appareil. Ils ne sont affichés qu'une fois.";
    mfa_recovery_codes => en: "Recovery codes", fr: "Codes de secours";
    mfa_disable => en: "Turn off two-step verification", fr: "Désactiver la vérification en deux étapes";
    mfa_disabled_notice => en: "Two-step verification is off.", fr: "La vérification en deux étapes est désactivée.";
    back_to_account => en: "Back to my account", fr: "Retour à mon compte";

    desk_title => en: "Circulation desk", fr: "Banque de prêt";
    desk_find => en: "Find a patron", fr: "Trouver un lecteur";
    desk_card_or_name => en: "Card number or name", fr: "Numéro de carte ou nom";
    desk_find_button => en: "Find", fr: "Trouver";
    desk_matches => en: "Patrons found", fr: "Lecteurs trouvés";
    desk_no_match => en: "No patron has this card number or name.", fr: "Aucun lecteur n'a ce numéro de carte ou ce nom.";
    desk_patron => en: "Patron", fr: "Lecteur";
    desk_card => en: "Card", fr: "Carte";
    desk_checkout => en: "Check out", fr: "Prêter";
    desk_checkout_to => en: "Check out to {}", fr: "Prêter à {}";
    desk_barcode => en: "Copy barcode", fr: "Code-barres de l'exemplaire";
    desk_return => en: "Return", fr: "Retour";
    desk_return_button => en: "Return the copy", fr: "Enregistrer le retour";
    desk_checked_out => en: "Checked out {}: due {}.", fr: "Prêté {} : retour prévu le {}.";
    desk_returned => en: "Returned {}.", fr: "Retour de {} enregistré.";
    desk_to_hold_shelf => en: "Put it on the hold shelf: a patron is waiting for it here.", fr: "Placez-le au guichet des réservations : un lecteur l'attend ici.";
    desk_to_transit => en: "Send it to another branch (in transit).", fr: "Envoyez-le à une autre bibliothèque (en transit).";
    desk_fine => en: "An overdue fine of {} was charged.", fr: "Une amende de retard de {} a été facturée.";
    desk_received => en: "Received {} from transit.", fr: "{} reçu du transit.";
    desk_patron_loans => en: "Loans of this patron", fr: "Prêts de ce lecteur";
    desk_refused => en: "Refused: {}", fr: "Refusé : {}";
    desk_patron_fines => en: "Fines of this patron", fr: "Amendes de ce lecteur";
    desk_amount => en: "Amount", fr: "Montant";
    desk_method => en: "Paid by", fr: "Mode de paiement";
    desk_cash => en: "Cash", fr: "Espèces";
    desk_card_payment => en: "Card", fr: "Carte bancaire";
    desk_take_payment => en: "Take payment", fr: "Encaisser";
    desk_take_payment_label => en: "Take a payment for the fine of {}", fr: "Encaisser l'amende de {}";
    desk_waive => en: "Waive", fr: "Remettre";
    desk_waive_label => en: "Waive the fine of {}", fr: "Remettre l'amende de {}";
    desk_waive_reason => en: "Reason", fr: "Motif";
    desk_waive_help => en: "Leave the amount empty to waive everything still owed.", fr: "Laissez le montant vide pour remettre tout ce qui reste dû.";
    desk_paid => en: "Payment of {} recorded.", fr: "Paiement de {} enregistré.";
    desk_waived => en: "Waived: {} still owed on this fine.", fr: "Remise accordée : il reste {} dû sur cette amende.";
    desk_amount_invalid => en: "the amount is not valid (for example 2.50).", fr: "le montant n'est pas valide (par exemple 2,50).";
    desk_branch => en: "This desk is at", fr: "Cette banque de prêt est à";
    desk_branch_button => en: "Change branch", fr: "Changer de bibliothèque";
    desk_shelf => en: "Hold shelf at {}", fr: "Réservations à retirer à {}";
    desk_shelf_empty => en: "Nothing is waiting to be picked up.", fr: "Aucun document n'attend d'être retiré.";
    desk_until => en: "Until", fr: "Jusqu'au";
    desk_transits => en: "On their way to {}", fr: "En transit vers {}";
    desk_transits_empty => en: "Nothing is in transit to this branch.", fr: "Aucun document n'est en transit vers cette bibliothèque.";
    desk_from => en: "From", fr: "De";
    desk_sent => en: "Sent on", fr: "Envoyé le";
    desk_receive => en: "Receive", fr: "Réceptionner";
    desk_receive_label => en: "Receive {}", fr: "Réceptionner {}";

    nav_admin => en: "Administration", fr: "Administration";
    admin_title => en: "Administration", fr: "Administration";
    admin_intro => en: "Settings of the whole library. Every change is recorded in the audit log.", fr: "Réglages de toute la bibliothèque. Chaque modification est inscrite au journal d'audit.";
    admin_rules => en: "Circulation rules", fr: "Règles de prêt";
    admin_rules_hint => en: "Loan periods, renewals, fines and limits by branch, patron category and item type; try a checkout.", fr: "Durées de prêt, prolongations, amendes et limites par bibliothèque, catégorie de lecteur et type de document ; simuler un prêt.";
    admin_users => en: "Users and roles", fr: "Utilisateurs et rôles";
    admin_users_hint => en: "Find an account, change its role, deactivate it.", fr: "Trouver un compte, changer son rôle, le désactiver.";
    admin_types => en: "Item types and patron categories", fr: "Types de documents et catégories de lecteurs";
    admin_types_hint => en: "The codes items, patrons and rules name.", fr: "Les codes que nomment les documents, les lecteurs et les règles.";
    yes => en: "Yes", fr: "Oui";
    no => en: "No", fr: "Non";

    rules_matrix => en: "Rule matrix", fr: "Matrice des règles";
    rules_matrix_help => en: "The most specific row that matches a checkout applies; the default row (any branch, category and type) covers the rest. Loans already out keep their rule.", fr: "La ligne la plus précise qui correspond à un prêt s'applique ; la ligne par défaut (toute bibliothèque, catégorie et type) couvre le reste. Les prêts en cours gardent leur règle.";
    rules_level => en: "Applies to", fr: "S'applique à";
    rules_row => en: "Row", fr: "Ligne";
    rules_branch => en: "Branch", fr: "Bibliothèque";
    rules_category => en: "Patron category", fr: "Catégorie de lecteur";
    rules_type => en: "Item type", fr: "Type de document";
    rules_loan_days => en: "Loan days", fr: "Jours de prêt";
    rules_renewals => en: "Renewals", fr: "Prolongations";
    rules_daily_fine => en: "Daily fine (cents)", fr: "Amende par jour (centimes)";
    rules_max_fine => en: "Fine cap (cents)", fr: "Plafond d'amende (centimes)";
    rules_grace_days => en: "Grace days", fr: "Jours de grâce";
    rules_replacement => en: "Replacement cost (cents)", fr: "Coût de remplacement (centimes)";
    rules_max_of_type => en: "Loans of this type (empty: no limit)", fr: "Prêts de ce type (vide : sans limite)";
    rules_daily_fine_short => en: "Daily fine", fr: "Amende par jour";
    rules_max_fine_short => en: "Fine cap", fr: "Plafond d'amende";
    rules_replacement_short => en: "Replacement cost", fr: "Coût de remplacement";
    rules_max_of_type_short => en: "Loans of this type", fr: "Prêts de ce type";
    rules_holds => en: "Holds allowed", fr: "Réservations permises";
    rules_remove => en: "Remove", fr: "Supprimer";
    rules_any => en: "Any", fr: "Indifférent";
    rules_no_limit => en: "No limit", fr: "Sans limite";
    rules_level_branch_category_type => en: "Branch, category and type", fr: "Bibliothèque, catégorie et type";
    rules_level_branch_category => en: "Branch and category", fr: "Bibliothèque et catégorie";
    rules_level_branch_type => en: "Branch and type", fr: "Bibliothèque et type";
    rules_level_branch => en: "Branch", fr: "Bibliothèque";
    rules_level_category_type => en: "Category and type", fr: "Catégorie et type";
    rules_level_category => en: "Category", fr: "Catégorie";
    rules_level_type => en: "Item type", fr: "Type de document";
    rules_level_default => en: "Default", fr: "Par défaut";
    rules_edit => en: "Edit the rule matrix", fr: "Modifier la matrice des règles";
    rules_edit_help => en: "Saving replaces the whole matrix with these rows. Leave a new row empty to add nothing; tick Remove to drop a row. One row must apply to any branch, any category and any type.", fr: "L'enregistrement remplace toute la matrice par ces lignes. Laissez une nouvelle ligne vide pour ne rien ajouter ; cochez Supprimer pour retirer une ligne. Une ligne doit s'appliquer à toute bibliothèque, toute catégorie et tout type.";
    rules_save => en: "Save the rules", fr: "Enregistrer les règles";
    rules_cancel => en: "Cancel", fr: "Annuler";
    rules_saved => en: "The rules are saved.", fr: "Les règles sont enregistrées.";
    rules_refused => en: "Nothing was changed. Correct these rows and save again:", fr: "Rien n'a été modifié. Corrigez ces lignes puis enregistrez à nouveau :";
    rules_row_problem => en: "Row {}: {}", fr: "Ligne {} : {}";
    rules_duplicate => en: "Row {}: another row has the same branch, category and type.", fr: "Ligne {} : une autre ligne a la même bibliothèque, catégorie et type.";
    rules_no_default => en: "The matrix needs a default row: any branch, any category and any type.", fr: "La matrice doit avoir une ligne par défaut : toute bibliothèque, toute catégorie et tout type.";
    rules_too_many => en: "The matrix has too many rows (at most 2000).", fr: "La matrice a trop de lignes (2000 au plus).";
    rules_hint_defined => en: "it no longer exists.", fr: "n'existe plus.";
    rules_hint_loan_days => en: "a whole number from 1 to 365.", fr: "un nombre entier de 1 à 365.";
    rules_hint_renewals => en: "a whole number from 0 to 50.", fr: "un nombre entier de 0 à 50.";
    rules_hint_cents => en: "a whole number of cents from 0 to 10000000.", fr: "un nombre entier de centimes de 0 à 10000000.";
    rules_hint_grace_days => en: "a whole number from 0 to 365.", fr: "un nombre entier de 0 à 365.";
    rules_hint_max_of_type => en: "empty, or a whole number from 0 to 10000.", fr: "vide, ou un nombre entier de 0 à 10000.";
    rules_simulate => en: "Try a checkout", fr: "Simuler un prêt";
    rules_simulate_help => en: "Shows which rule a checkout would use, when the loan would be due, and why it would be refused, without lending anything.", fr: "Montre quelle règle un prêt utiliserait, quand il serait à rendre et pourquoi il serait refusé, sans rien prêter.";
    rules_sim_card => en: "Patron card number", fr: "Numéro de carte du lecteur";
    rules_sim_branch => en: "Lending branch", fr: "Bibliothèque de prêt";
    rules_sim_home_branch => en: "The copy's home branch", fr: "La bibliothèque de l'exemplaire";
    rules_sim_button => en: "Try it", fr: "Simuler";
    rules_sim_result => en: "What checkout would do", fr: "Ce que ferait le prêt";
    rules_sim_matched => en: "Rule used", fr: "Règle utilisée";
    rules_sim_due => en: "Due", fr: "Retour prévu";
    rules_sim_outcome => en: "Outcome", fr: "Résultat";
    rules_sim_would_lend => en: "The checkout would be allowed.", fr: "Le prêt serait accordé.";
    rules_sim_both => en: "give a card number and a copy barcode.", fr: "indiquez un numéro de carte et un code-barres d'exemplaire.";
    rules_sim_no_copy => en: "no copy has this barcode.", fr: "aucun exemplaire n'a ce code-barres.";

    role_admin => en: "Administrator", fr: "Administrateur";
    role_librarian => en: "Librarian", fr: "Bibliothécaire";
    role_patron => en: "Patron", fr: "Lecteur";
    users_search => en: "Name, username or email address", fr: "Nom, nom d'utilisateur ou adresse électronique";
    users_found => en: "Accounts found", fr: "Comptes trouvés";
    users_newest => en: "Newest accounts", fr: "Comptes les plus récents";
    users_none => en: "No account matches.", fr: "Aucun compte ne correspond.";
    users_name => en: "Name", fr: "Nom";
    users_role => en: "Role", fr: "Rôle";
    users_role_of => en: "Role of {}", fr: "Rôle de {}";
    users_change_role => en: "Change role", fr: "Changer le rôle";
    users_active => en: "Active", fr: "Actif";
    users_inactive => en: "Deactivated", fr: "Désactivé";
    users_deactivate => en: "Deactivate", fr: "Désactiver";
    users_reactivate => en: "Reactivate", fr: "Réactiver";
    users_deactivate_label => en: "Deactivate the account of {}", fr: "Désactiver le compte de {}";
    users_reactivate_label => en: "Reactivate the account of {}", fr: "Réactiver le compte de {}";
    users_role_changed => en: "{} is now: {}.", fr: "{} est désormais : {}.";
    users_deactivated => en: "The account of {} is deactivated and its sessions have ended.", fr: "Le compte de {} est désactivé et ses sessions sont fermées.";
    users_reactivated => en: "The account of {} is active again.", fr: "Le compte de {} est de nouveau actif.";
    users_not_yourself => en: "you cannot change your own role or deactivate your own account here; another administrator must.", fr: "vous ne pouvez pas changer votre propre rôle ni désactiver votre propre compte ici ; un autre administrateur doit le faire.";

    types_item_types => en: "Item types", fr: "Types de documents";
    types_categories => en: "Patron categories", fr: "Catégories de lecteurs";
    types_code => en: "Code", fr: "Code";
    types_code_help => en: "1 to 32 of a-z, 0-9, _ and -. A code never changes.", fr: "1 à 32 caractères parmi a-z, 0-9, _ et -. Un code ne change jamais.";
    types_name => en: "Name", fr: "Nom";
    types_max_loans => en: "Most loans at once", fr: "Prêts simultanés au plus";
    types_max_holds => en: "Most holds at once", fr: "Réservations simultanées au plus";
    types_limit_help => en: "Empty: no limit of the category's own (the library's limits still apply).", fr: "Vide : pas de limite propre à la catégorie (les limites de la bibliothèque s'appliquent).";
    types_new_type => en: "New item type", fr: "Nouveau type de document";
    types_new_category => en: "New patron category", fr: "Nouvelle catégorie de lecteur";
    types_add => en: "Add", fr: "Ajouter";
    types_delete => en: "Delete", fr: "Supprimer";
    types_rename_label => en: "Name of {}", fr: "Nom de {}";
    types_save_label => en: "Save {}", fr: "Enregistrer {}";
    types_delete_label => en: "Delete {}", fr: "Supprimer {}";
    types_created => en: "{} is created.", fr: "{} est créé.";
    types_saved => en: "{} is saved.", fr: "{} est enregistré.";
    types_deleted => en: "{} is deleted.", fr: "{} est supprimé.";
    types_code_taken => en: "this code is already used.", fr: "ce code est déjà utilisé.";
    types_in_use => en: "items (deleted ones included) or circulation rules use this item type. Change them first.", fr: "des documents (y compris supprimés) ou des règles de prêt utilisent ce type. Modifiez-les d'abord.";
    categories_in_use => en: "this is the default category, or users (deleted ones included) or circulation rules use it. Change them first.", fr: "c'est la catégorie par défaut, ou des utilisateurs (y compris supprimés) ou des règles de prêt l'utilisent. Modifiez-les d'abord.";

    admin_branches => en: "Branches and calendars", fr: "Bibliothèques et calendriers";
    admin_branches_hint => en: "Branches, their time zones, opening hours and closed days.", fr: "Les bibliothèques, leurs fuseaux horaires, heures d'ouverture et jours de fermeture.";
    branches_name => en: "Name", fr: "Nom";
    branches_timezone => en: "Time zone", fr: "Fuseau horaire";
    branches_timezone_help => en: "An IANA name such as Europe/Paris; empty: the library's", fr: "Un nom IANA comme Europe/Paris ; vide : celui de la bibliothèque";
    branches_address => en: "Address", fr: "Adresse";
    branches_code_help => en: "1 to 16 of A-Z, a-z, 0-9, _ and -.", fr: "1 à 16 caractères parmi A-Z, a-z, 0-9, _ et -.";
    branches_calendar => en: "Opening calendar", fr: "Calendrier d'ouverture";
    branches_calendar_set => en: "Set", fr: "Défini";
    branches_calendar_unset => en: "Open every day (never set)", fr: "Ouvert tous les jours (jamais défini)";
    branches_new => en: "New branch", fr: "Nouvelle bibliothèque";
    branches_details => en: "Details", fr: "Informations";
    branches_edit_heading => en: "Branch: {}", fr: "Bibliothèque : {}";
    branches_created => en: "The branch is created.", fr: "La bibliothèque est créée.";
    branches_saved => en: "Saved. Loans already made keep their due dates.", fr: "Enregistré. Les prêts déjà consentis gardent leur date de retour.";
    branches_weekly => en: "Opening hours", fr: "Heures d'ouverture";
    branches_hours_help => en: "Local time of the branch, for example 09:00-12:30, 14:00-18:00. Leave a day empty when the branch is closed.", fr: "Heure locale de la bibliothèque, par exemple 09:00-12:30, 14:00-18:00. Laissez un jour vide quand la bibliothèque est fermée.";
    branches_closed_dates => en: "Closed days", fr: "Jours de fermeture";
    branches_closed_help => en: "One date a line, as YYYY-MM-DD (for example 2026-12-25). Due dates move past closed days.", fr: "Une date par ligne, au format AAAA-MM-JJ (par exemple 2026-12-25). Les dates de retour sont reportées après les jours de fermeture.";
    branches_save_calendar => en: "Save the calendar", fr: "Enregistrer le calendrier";
    branches_calendar_refused => en: "The calendar was not changed:", fr: "Le calendrier n'a pas été modifié :";
    branches_bad_hours => en: "{}: hours must be HH:MM-HH:MM (opening before closing), not overlapping.", fr: "{} : les heures doivent être HH:MM-HH:MM (ouverture avant fermeture), sans chevauchement.";
    branches_bad_date => en: "\"{}\" is not a date YYYY-MM-DD.", fr: "« {} » n'est pas une date AAAA-MM-JJ.";
    branches_too_many_dates => en: "At most 2000 closed days.", fr: "2000 jours de fermeture au plus.";
    weekday_mon => en: "Monday", fr: "Lundi";
    weekday_tue => en: "Tuesday", fr: "Mardi";
    weekday_wed => en: "Wednesday", fr: "Mercredi";
    weekday_thu => en: "Thursday", fr: "Jeudi";
    weekday_fri => en: "Friday", fr: "Vendredi";
    weekday_sat => en: "Saturday", fr: "Samedi";
    weekday_sun => en: "Sunday", fr: "Dimanche";

    admin_imports => en: "Catalog imports", fr: "Imports du catalogue";
    admin_imports_hint => en: "Load MARC records (ISO 2709 or MARCXML) and follow their progress.", fr: "Charger des notices MARC (ISO 2709 ou MARCXML) et suivre leur progression.";
    imports_new => en: "Start an import", fr: "Lancer un import";
    imports_file => en: "File", fr: "Fichier";
    imports_file_help => en: "ISO 2709 (.mrc) or MARCXML; at most", fr: "ISO 2709 (.mrc) ou MARCXML ; au plus";
    imports_format => en: "Format", fr: "Format";
    imports_format_auto => en: "Recognise it", fr: "Le reconnaître";
    imports_match => en: "Existing records", fr: "Notices existantes";
    imports_match_isbn => en: "Update the item with the same ISBN", fr: "Mettre à jour le document de même ISBN";
    imports_match_control => en: "Update the item with the same control number (001)", fr: "Mettre à jour le document de même numéro de contrôle (001)";
    imports_match_none => en: "Always create (an ISBN already there is skipped)", fr: "Toujours créer (un ISBN déjà présent est ignoré)";
    imports_start => en: "Start the import", fr: "Lancer l'import";
    imports_started => en: "The import has started; it runs in the background. Refresh this page to follow it.", fr: "L'import a commencé ; il se poursuit en arrière-plan. Actualisez cette page pour le suivre.";
    imports_jobs => en: "Imports", fr: "Imports";
    imports_refresh => en: "Refresh the progress", fr: "Actualiser la progression";
    imports_none => en: "No import yet.", fr: "Aucun import pour l'instant.";
    imports_processed => en: "Records handled", fr: "Notices traitées";
    imports_progress => en: "{} of {} ({}%)", fr: "{} sur {} ({} %)";
    imports_created => en: "Created", fr: "Créées";
    imports_updated => en: "Updated", fr: "Mises à jour";
    imports_skipped => en: "Skipped", fr: "Ignorées";
    imports_failed_records => en: "Failed", fr: "En échec";
    imports_started_at => en: "Started", fr: "Commencé";
    imports_queued => en: "Waiting", fr: "En attente";
    imports_running => en: "Running", fr: "En cours";
    imports_done => en: "Done", fr: "Terminé";
    imports_failed => en: "Failed", fr: "Échoué";

    refused_copy_unavailable => en: "this copy is not available (on loan, on hold for someone else, or out of circulation).", fr: "cet exemplaire n'est pas disponible (en prêt, réservé pour un autre lecteur ou hors circulation).";
    refused_loan_limit => en: "the patron has reached the loan limit.", fr: "le lecteur a atteint le nombre maximal de prêts.";
    refused_loan_type_limit => en: "the patron has reached the loan limit for this item type.", fr: "le lecteur a atteint le nombre maximal de prêts pour ce type de document.";
    refused_patron_blocked => en: "the patron owes too much in fines.", fr: "le lecteur doit trop d'amendes.";
    refused_patron_inactive => en: "the patron's account is deactivated.", fr: "le compte du lecteur est désactivé.";
    refused_renewal_limit => en: "this loan cannot be renewed again.", fr: "ce prêt ne peut plus être prolongé.";
    refused_hold_pending => en: "other patrons are waiting for this item.", fr: "d'autres lecteurs attendent ce document.";
    refused_hold_exists => en: "there is already a hold on this item.", fr: "ce document est déjà réservé à ce nom.";
    refused_hold_limit => en: "the hold limit is reached.", fr: "le nombre maximal de réservations est atteint.";
    refused_holds_not_allowed => en: "holds are not allowed for this item type.", fr: "ce type de document ne peut pas être réservé.";
    refused_already_borrowed => en: "the patron already has this item on loan.", fr: "le lecteur a déjà ce document en prêt.";
    refused_not_on_loan => en: "this copy is not on loan.", fr: "cet exemplaire n'est pas en prêt.";
    refused_hold_closed => en: "the hold is no longer open.", fr: "la réservation n'est plus active.";
    refused_fine_settled => en: "this fine is already paid or waived.", fr: "cette amende est déjà payée ou remise.";
    refused_exceeds_balance => en: "the amount is more than what is still owed.", fr: "le montant dépasse ce qui reste dû.";
    refused_own_fine => en: "staff cannot settle their own fines.", fr: "le personnel ne peut pas régler ses propres amendes.";
    refused_not_in_transit => en: "this copy is not in transit to this branch.", fr: "cet exemplaire n'est pas en transit vers cette bibliothèque.";

    error_title => en: "Something went wrong", fr: "Un problème est survenu";
    error_generic => en: "The request could not be completed.", fr: "La demande n'a pas pu aboutir.";
    error_invalid => en: "Some of the information is not valid. Check it and try again.", fr: "Certaines informations ne sont pas valides. Vérifiez-les et réessayez.";
    error_credentials => en: "The username or password is wrong.", fr: "Le nom d'utilisateur ou le mot de passe est incorrect.";
    error_email_not_verified => en: "Confirm your email address first: follow the link in the email we sent.", fr: "Confirmez d'abord votre adresse électronique : suivez le lien du courriel envoyé.";
    error_sign_in => en: "Sign in to continue.", fr: "Connectez-vous pour continuer.";
    error_forbidden => en: "You are not allowed to do this.", fr: "Vous n'êtes pas autorisé à faire cela.";
    error_csrf => en: "This form has expired. Reload the page and try again.", fr: "Ce formulaire a expiré. Rechargez la page et réessayez.";
    error_not_found => en: "This page or record does not exist.", fr: "Cette page ou cette notice n'existe pas.";
    error_rate_limited => en: "Too many attempts. Wait a moment and try again.", fr: "Trop de tentatives. Patientez un instant puis réessayez.";
    error_unavailable => en: "The service is busy or unavailable. Try again shortly.", fr: "Le service est occupé ou indisponible. Réessayez dans un instant.";
    error_token => en: "This link is invalid, expired or already used.", fr: "Ce lien est invalide, expiré ou déjà utilisé.";
    error_mfa_setup => en: "Your role requires two-step verification: turn it on to continue.", fr: "Votre rôle exige la vérification en deux étapes : activez-la pour continuer.";
    back_to_catalog => en: "Back to the catalog", fr: "Retour au catalogue";

    // ---- Patron pages (issue 18, branch `patron`): online fine payment ----
    pay_online => en: "Pay online", fr: "Payer en ligne";
    pay_online_label => en: "Pay the fine of {} online", fr: "Payer en ligne l'amende de {}";
    pay_online_help => en: "Pay all or part of a fine with the library's online payment service.", fr: "Payez tout ou partie d'une amende par le service de paiement en ligne de la bibliothèque.";
    payment_token => en: "Payment token", fr: "Jeton de paiement";
    paid_online => en: "Payment of {} received. Thank you.", fr: "Paiement de {} reçu. Merci.";
    payment_declined => en: "the payment was declined; nothing was charged or recorded.", fr: "le paiement a été refusé ; rien n'a été débité ni enregistré.";
    online_payments_disabled => en: "online payments are not available; pay at the desk.", fr: "le paiement en ligne n'est pas disponible ; réglez à la banque de prêt.";
    payment_provider_unavailable => en: "the payment service is unavailable; nothing was charged. Try again later.", fr: "le service de paiement est indisponible ; rien n'a été débité. Réessayez plus tard.";
    payment_token_invalid => en: "the payment token is missing or not valid.", fr: "le jeton de paiement est absent ou invalide.";

    // ---- Patron pages (issue 18, branch `patron`): a hold's pickup branch ----
    change_pickup => en: "Change", fr: "Modifier";
    change_pickup_label => en: "Pick up {} at", fr: "Retirer {} à";
    pickup_changed => en: "You will pick it up at {}.", fr: "Vous le retirerez à {}.";
    pickup_fixed => en: "A copy is set aside at this branch: the pickup branch can no longer change.", fr: "Un exemplaire est mis de côté dans cette bibliothèque : le lieu de retrait ne peut plus changer.";
    refused_hold_not_waiting => en: "the hold is no longer waiting: a copy is already set aside for it (or it is closed), so its pickup branch cannot change.", fr: "la réservation n'est plus en attente : un exemplaire lui est déjà réservé (ou elle est close), son lieu de retrait ne peut donc plus changer.";
    refused_unknown_branch => en: "this branch does not exist (any more).", fr: "cette bibliothèque n'existe pas (ou plus).";

    // ---- Patron pages (issue 18, branch `patron`): search facets ----
    facets_heading => en: "Refine the results", fr: "Affiner les résultats";
    facets_show => en: "Refine by type, language, decade and subject", fr: "Affiner par type, langue, décennie et sujet";
    facet_decades => en: "Published in", fr: "Publié dans les années";
    facet_decade => en: "{}s", fr: "{}";
    facet_no_year => en: "Year unknown", fr: "Année inconnue";
    facet_none => en: "Not given", fr: "Non précisée";
    facet_selected => en: "filter in force; follow the link to remove it", fr: "filtre appliqué ; suivez le lien pour le retirer";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(Lang::negotiate("fr-CA,fr;q=0.9,en;q=0.8"), Lang::Fr);
        assert_eq!(Lang::negotiate("de, en;q=0.5, fr;q=0.7"), Lang::Fr);
        assert_eq!(Lang::negotiate("de"), Lang::En);
        assert_eq!(Lang::negotiate("fr;q=0, en"), Lang::En);
        assert_eq!(Lang::negotiate(""), Lang::En);
    }

    #[test]
    fn dates_and_money_follow_the_language() {
        let day = time::macros::date!(2026 - 12 - 28);
        assert_eq!(Lang::En.date(day), "December 28, 2026");
        assert_eq!(Lang::Fr.date(day), "28 décembre 2026");
        assert_eq!(Lang::En.money(150, "EUR"), "€1.50");
        assert_eq!(Lang::Fr.money(150, "EUR"), "1,50\u{a0}€");
        assert_eq!(Lang::En.money(-5, "XYZ"), "-XYZ 0.05");
        let zone = carrel_core::calendar::Zone::named("Europe/Paris").unwrap();
        let at = time::macros::datetime!(2026-12-28 14:05 UTC);
        assert_eq!(Lang::En.date_time(&zone, at), "December 28, 2026, 3:05 PM");
        assert_eq!(Lang::Fr.date_time(&zone, at), "28 décembre 2026 à 15:05");
    }

    #[test]
    fn french_counts_zero_as_singular() {
        assert_eq!(
            Lang::Fr.count(0, "exemplaire", "exemplaires"),
            "0 exemplaire"
        );
        assert_eq!(Lang::En.count(0, "copy", "copies"), "0 copies");
    }
}
