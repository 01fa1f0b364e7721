/**
 * Regional ECR images used by SageMaker training jobs: the built-in XGBoost algorithm and the
 * Debugger rule evaluators. Tables follow /work/shared/spec/sagemaker-api.md §3 (SageMaker Python SDK
 * image_uri_config and the AWS "Debugger rule images" docs).
 */

/** Account of `sagemaker-xgboost` (0.90-1 … 3.0-5) per region. */
const XGBOOST_ACCOUNTS: Readonly<Record<string, string>> = {
  "af-south-1": "510948584623",
  "ap-east-1": "651117190479",
  "ap-northeast-1": "354813040037",
  "ap-northeast-2": "366743142698",
  "ap-northeast-3": "867004704886",
  "ap-south-1": "720646828776",
  "ap-south-2": "628508329040",
  "ap-southeast-1": "121021644041",
  "ap-southeast-2": "783357654285",
  "ap-southeast-3": "951798379941",
  "ap-southeast-4": "106583098589",
  "ca-central-1": "341280168497",
  "ca-west-1": "190319476487",
  "cn-north-1": "450853457545",
  "cn-northwest-1": "451049120500",
  "eu-central-1": "492215442770",
  "eu-central-2": "680994064768",
  "eu-north-1": "662702820516",
  "eu-south-1": "978288397137",
  "eu-south-2": "104374241257",
  "eu-west-1": "141502667606",
  "eu-west-2": "764974769150",
  "eu-west-3": "659782779980",
  "il-central-1": "898809789911",
  "me-central-1": "272398656194",
  "me-south-1": "801668240914",
  "sa-east-1": "737474898029",
  "us-east-1": "683313688378",
  "us-east-2": "257758044811",
  "us-gov-east-1": "237065988967",
  "us-gov-west-1": "414596584902",
  "us-iso-east-1": "833128469047",
  "us-isob-east-1": "281123927165",
  "us-isof-east-1": "108575199400",
  "us-isof-south-1": "124985052026",
  "us-west-1": "746614075791",
  "us-west-2": "246618743249",
};

/**
 * Account of `sagemaker-debugger-rules:latest` (built-in rules) per region. A region missing here is one
 * where the Python SDK refuses Debugger (or AWS lists no rule image), so we refuse it too.
 */
const DEBUGGER_RULES_ACCOUNTS: Readonly<Record<string, string>> = {
  "af-south-1": "314341159256",
  "ap-east-1": "199566480951",
  "ap-northeast-1": "430734990657",
  "ap-northeast-2": "578805364391",
  "ap-northeast-3": "479947661362",
  "ap-south-1": "904829902805",
  "ap-southeast-1": "972752614525",
  "ap-southeast-2": "184798709955",
  "ca-central-1": "519511493484",
  "cn-north-1": "618459771430",
  "cn-northwest-1": "658757709296",
  "eu-central-1": "482524230118",
  "eu-north-1": "314864569078",
  "eu-south-1": "563282790590",
  "eu-west-1": "929884845733",
  "eu-west-2": "250201462417",
  "eu-west-3": "447278800020",
  "me-south-1": "986000313247",
  "sa-east-1": "818342061345",
  "us-east-1": "503895931360",
  "us-east-2": "915447279597",
  "us-gov-west-1": "515509971035",
  "us-west-1": "685455198987",
  "us-west-2": "895741380848",
};

/** Account of `sagemaker-debugger-rule-evaluator:latest` (custom rules) per region, from the AWS docs. */
const CUSTOM_RULE_EVALUATOR_ACCOUNTS: Readonly<Record<string, string>> = {
  "af-south-1": "515950693465",
  "ap-east-1": "645844755771",
  "ap-northeast-1": "670969264625",
  "ap-northeast-2": "326368420253",
  "ap-south-1": "552407032007",
  "ap-southeast-1": "631532610101",
  "ap-southeast-2": "445670767460",
  "ca-central-1": "105842248657",
  "cn-north-1": "617202126805",
  "cn-northwest-1": "658559488188",
  "eu-central-1": "691764027602",
  "eu-north-1": "091235270104",
  "eu-south-1": "335033873580",
  "eu-west-1": "606966180310",
  "eu-west-2": "074613877050",
  "eu-west-3": "224335253976",
  "me-south-1": "050406412588",
  "sa-east-1": "466516958431",
  "us-east-1": "864354269164",
  "us-east-2": "840043622174",
  "us-west-1": "952348334681",
  "us-west-2": "759209512951",
  "us-gov-west-1": "515361955729",
};

/** SageMaker XGBoost container versions, oldest first. */
export const XGBOOST_VERSIONS: readonly string[] = [
  "0.90-1", "0.90-2", "1.0-1", "1.2-1", "1.2-2", "1.3-1", "1.5-1", "1.7-1", "3.0-5",
];

/** Versions whose image tag carries the `-cpu-py3` suffix (the SDK's tag assembly). */
const CPU_PY3_TAGGED: ReadonlySet<string> = new Set(["0.90-1", "0.90-2", "1.0-1"]);

/** The ECR DNS suffix of a region's partition. */
export function ecrDomain(region: string): string {
  if (region.startsWith("cn-")) return "amazonaws.com.cn";
  if (region.startsWith("us-isob-")) return "sc2s.sgov.gov";
  if (region.startsWith("us-isof-")) return "csp.hci.ic.gov";
  if (region.startsWith("us-iso-")) return "c2s.ic.gov";
  return "amazonaws.com";
}

const ecrImage = (account: string, region: string, repoAndTag: string) =>
  `${account}.dkr.ecr.${region}.${ecrDomain(region)}/${repoAndTag}`;

/**
 * Canonical XGBoost version for user input: "1.7-1" stays, "0.90-2-cpu-py3" becomes "0.90-2".
 * Null when the version is not a SageMaker XGBoost container version.
 */
export function normalizeXgboostVersion(version: string): string | null {
  const bare = version.trim().replace(/-cpu-py3$/, "");
  return XGBOOST_VERSIONS.includes(bare) ? bare : null;
}

/** `<acct>.dkr.ecr.<region>.<domain>/sagemaker-xgboost:<tag>`, or null for an unknown region/version. */
export function xgboostImageUri(region: string, version: string): string | null {
  const account = XGBOOST_ACCOUNTS[region];
  const bare = normalizeXgboostVersion(version);
  if (!account || !bare) return null;
  const tag = CPU_PY3_TAGGED.has(bare) ? `${bare}-cpu-py3` : bare;
  return ecrImage(account, region, `sagemaker-xgboost:${tag}`);
}

/** The built-in rule evaluator image, or null where SageMaker Debugger rules are not offered. */
export function debuggerRulesImageUri(region: string): string | null {
  const account = DEBUGGER_RULES_ACCOUNTS[region];
  return account ? ecrImage(account, region, "sagemaker-debugger-rules:latest") : null;
}

/** The evaluator image AWS documents for custom rules, or null where none is listed. */
export function customRuleEvaluatorImageUri(region: string): string | null {
  const account = CUSTOM_RULE_EVALUATOR_ACCOUNTS[region];
  return account ? ecrImage(account, region, "sagemaker-debugger-rule-evaluator:latest") : null;
}

export function debuggerSupportedRegions(): string[] {
  return Object.keys(DEBUGGER_RULES_ACCOUNTS).sort();
}
