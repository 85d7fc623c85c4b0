"""Messages that must never get an automatic answer, whatever they share with one:
greetings and thanks (nothing is asked), complaints (a person must answer), and personal
messages (about the visitor's own order, booking or visit: only the owner knows).

Plain word lists per language, checked on folded words (words.fold): a rule an owner can
read and we can test, rather than a model that guesses."""

from __future__ import annotations

import re

from relay.answers.words import WORD, fold, listed

# Whole messages made only of these (and punctuation) ask nothing.
SMALL_TALK = {
    "en": listed(
        """hi hello hey hiya yo good morning afternoon evening day there thanks thank you
        so much very a lot lots ok okay great perfect cool nice awesome cheers bye
        goodbye see soon have ya thx ty much appreciated sir madam all folks team
        again kind regards best wishes lovely brilliant wonderful"""
    ),
    "fr": listed(
        """bonjour bonsoir salut coucou hello merci beaucoup bcp mille fois infiniment
        ok d accord daccord super parfait genial top cool bonne journee soiree au revoir
        a bientot bientot tchao ciao madame monsieur messieurs dames tous toute l equipe
        encore bien tres sympa cordialement excellent"""
    ),
}

# A complaint: something went wrong and someone should hear it.
COMPLAINT = {
    "en": re.compile(
        r"\b(disappoint\w*|unhappy|angry|furious|terrible|awful|horrible|worst|rude|"
        r"complain\w*|refund\w*|unacceptable|ruined|dry|stale|burnt|broke|broken|"
        r"damaged|mess|messy|dirty|late again|never (?:came|arrived|showed|called)|"
        r"(?:nobody|no one) (?:called|answered|came)|still (?:waiting|leaking)|"
        r"not happy|wasn ?t|didn ?t (?:work|arrive|come|show)|doesn ?t work|"
        r"sick|food poisoning|overcharged|(?:charged|billed) (?:\w+ ){0,4}twice|scam|ripped off|"
        r"upset|annoyed|ridiculous|pathetic|shameful|disgrac\w*|impolite|unfriendly|"
        r"(?:bad|poor|awful|terrible) (?:service|quality|experience)|(?:was|were|is) wrong|"
        r"wrong (?:order|cake|item|bread|room|bill|address)|forgot(?:ten)? (?:me|my|us|our)|"
        r"(?:you|they) forgot|not good enough|waste of)\b"
    ),
    "fr": re.compile(
        r"\b(decu\w*|mecontent\w*|inadmissible|inacceptable|honte|scandal\w*|"
        r"plainte|reclamation|rembours\w*|immonde|degoutant|sale|salete|"
        r"sec|seche|rassis|brule|abime\w*|casse\w*|en retard|jamais (?:venu|arrive|rappele)|"
        r"personne (?:n a|ne m a) (?:rappele|repondu)|toujours pas|"
        r"pas content\w*|malade|arnaque|trop paye|n a pas marche|"
        r"(?:facture|paye|debite)e?s? (?:\w+ ){0,4}deux fois|"
        r"ne marche (?:pas|plus)|ne fonctionne (?:pas|plus)|fuit encore|catastroph\w*|"
        r"enerve\w*|agace\w*|ridicule|lamentable|honteu\w*|nul|nulle|impoli\w*|desagreable|"
        r"(?:mauvais|pietre) (?:service|accueil|qualite)|service (?:nul|minable|lamentable)|"
        r"oublie\w* (?:ma|mon|mes|notre|nos)|(?:m|nous) (?:avez|a|ont) oublie\w*|"
        r"(?:etait|est) (?:faux|fausse|incorrect\w*)|pas la bonne (?:commande|adresse|chambre))\b"
    ),
}

# Asking for a person ("Talk to a person" under an automatic answer sends such a line).
HANDOFF = {
    "en": re.compile(
        r"\b((?:talk|speak|chat) (?:to|with) (?:a |an |the |someone|somebody|"
        r"(?:a )?(?:real )?(?:person|human|owner|manager))|real person|human please)\b"
    ),
    "fr": re.compile(
        r"\b(parler (?:a|avec) (?:quelqu un|une personne|un humain|le patron|la patronne|"
        r"un responsable|une vraie personne)|vraie personne)\b"
    ),
}

# Personal: the visitor's own order, booking, bill, visit — or a number that names one.
PERSONAL = {
    "en": re.compile(
        r"\b(my (?:order|booking|reservation|cake|invoice|bill|receipt|appointment|"
        r"room|stay|account|delivery|payment|deposit|plumber|technician|quote|"
        r"husband|wife|son|daughter|kid|kids|boiler|bathroom|kitchen|sink|toilet|"
        r"car|guests?)|i (?:ordered|booked|reserved|paid|bought|called|emailed|"
        r"left|lost|forgot)|we (?:ordered|booked|reserved|paid|stayed)|"
        r"(?:order|booking|reservation|invoice|confirmation) (?:number|no|n|#)|"
        r"#\s?\d+|\d{4,})\b"
    ),
    "fr": re.compile(
        r"\b((?:ma|mon|mes) (?:commande|reservation|gateau|facture|recu|rendez vous|"
        r"rdv|chambre|sejour|compte|livraison|paiement|acompte|devis|plombier|"
        r"technicien|mari|femme|fils|fille|enfants?|chaudiere|salle de bain|cuisine|"
        r"evier|toilettes|wc|voiture|invites)|j ai (?:commande|reserve|paye|achete|"
        r"appele|envoye|oublie|perdu|laisse)|nous avons (?:commande|reserve|paye)|"
        r"on a (?:commande|reserve|paye)|numero de (?:commande|reservation|facture)|"
        r"n\s?°\s?\d+|#\s?\d+|\d{4,})\b"
    ),
}


def small_talk(text: str, language: str) -> bool:
    """Only greetings, thanks and pleasantries: nothing is asked."""
    found = WORD.findall(_plain(text))
    lexicon = SMALL_TALK.get(language, frozenset())
    return not found or all(word in lexicon for word in found)


def needs_a_person(text: str, language: str) -> str | None:
    """ "handoff", "complaint" or "personal" when the message is one, else None."""
    plain = _plain(text)
    for name, rules in (("handoff", HANDOFF), ("complaint", COMPLAINT), ("personal", PERSONAL)):
        rule = rules.get(language)
        if rule is not None and rule.search(plain):
            return name
    return None


def _plain(text: str) -> str:
    """Folded, apostrophes and hyphens as spaces: "n'a" → "n a", "rendez-vous" → "rendez vous"."""
    return re.sub(r"['’\-]", " ", fold(text))
