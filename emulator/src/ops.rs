//! The SiteWise operations the emulator serves.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    CreateAssetModel,
    DescribeAssetModel,
    DeleteAssetModel,
    UpdateAssetModel,
    CreateAsset,
    DescribeAsset,
    UpdateAsset,
    UpdateAssetProperty,
    DeleteAsset,
    AssociateAssets,
    DisassociateAssets,
    ListAssociatedAssets,
    ListAssets,
    TagResource,
    UntagResource,
    ListTagsForResource,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateAssetModel => "CreateAssetModel",
            Self::DescribeAssetModel => "DescribeAssetModel",
            Self::DeleteAssetModel => "DeleteAssetModel",
            Self::UpdateAssetModel => "UpdateAssetModel",
            Self::CreateAsset => "CreateAsset",
            Self::DescribeAsset => "DescribeAsset",
            Self::UpdateAsset => "UpdateAsset",
            Self::UpdateAssetProperty => "UpdateAssetProperty",
            Self::DeleteAsset => "DeleteAsset",
            Self::AssociateAssets => "AssociateAssets",
            Self::DisassociateAssets => "DisassociateAssets",
            Self::ListAssociatedAssets => "ListAssociatedAssets",
            Self::ListAssets => "ListAssets",
            Self::TagResource => "TagResource",
            Self::UntagResource => "UntagResource",
            Self::ListTagsForResource => "ListTagsForResource",
        }
    }
}
