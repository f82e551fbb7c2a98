// The 18-character national ID number's check character (GB 11643-1999), the same rule the
// server applies (api/security.py id_number_valid), so the desk sees a typo at once.
const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = "10X98765432";

/** The check character for 17 digits. */
export function checkCharacter(first17) {
  let total = 0;
  for (let i = 0; i < 17; i++) total += Number(first17[i]) * WEIGHTS[i];
  return CHECK[total % 11];
}

/** "" if valid, else why not: "length", "digits" or "check". */
export function idNumberProblem(value) {
  const v = value.trim().toUpperCase();
  if (v.length !== 18) return "length";
  if (!/^[0-9]{17}[0-9X]$/.test(v)) return "digits";
  return checkCharacter(v.slice(0, 17)) === v[17] ? "" : "check";
}
