// The agent downloads packages with the verifying fetch it shares with the controller's install-time check.
export { downloadVerified, type DownloadAccess, type ExpectedPackage, type UrlAccess } from '../../common/package-fetch.js';
